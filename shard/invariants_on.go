//go:build invariants || race

package shard

// invariants turns on the log's consistency checks (checkInvariants and the
// owner check) in builds with -tags invariants, and under the race detector,
// which `make test` always uses, as Pebble does: checks that never run
// protect nothing.
const invariants = true
