//go:build !invariants && !race

package reactor

// invariants is off in normal builds (neither -tags invariants nor -race);
// see invariants_on.go.
const invariants = false
