//go:build invariants

package reactor

// invariants turns on the expensive ownership checks (one gettid syscall per
// Send, After and AssertOwned). Build or test with -tags invariants.
const invariants = true
