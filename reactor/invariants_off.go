//go:build !invariants

package reactor

// invariants is off in normal builds; see invariants_on.go.
const invariants = false
