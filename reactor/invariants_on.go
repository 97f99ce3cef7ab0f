//go:build invariants || race

package reactor

// invariants turns on the expensive ownership checks (one gettid syscall per
// Send, After and AssertOwned). Build or test with -tags invariants; the race
// detector turns them on too, as Pebble does, so every `make test` run
// (which uses -race) exercises them.
const invariants = true
