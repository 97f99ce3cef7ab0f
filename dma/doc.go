// Package dma is Strand's only path to the disk: aligned buffers, direct I/O
// files, and a per-core asynchronous I/O engine.
//
// Ownership: an Engine belongs to exactly one core (one locked OS thread). Its
// methods are not goroutine-safe, and completion callbacks run on the thread
// that calls Poll, which is always the owning core. FS and File metadata calls
// (open, truncate, allocate, statfs, rename) are synchronous and rare: they
// happen on segment roll, retention, recovery, once per preallocation chunk
// or index checkpoint, and when a read reopens a sealed segment, never per
// record.
//
// Implementations:
//
//   - uringEngine: io_uring through giouring, O_DIRECT files. The default.
//   - syscallEngine: pwrite/pread/fdatasync, used where io_uring is disabled
//     (sysctl kernel.io_uring_disabled, seccomp). Ops are queued and executed
//     in Poll, so callers see the same "callback later, on my thread" contract.
//   - TimedEngine (timed.go): wraps any engine to count operations and
//     keep fixed-bucket latency histograms in plain fields of its core;
//     the reactor wraps every core's engine with it.
//   - MemFS + its engine (tests): enforces O_DIRECT alignment, can reorder
//     completions, inject faults (ENOSPC, failed fsync, short writes) and
//     simulate a crash that keeps only synced bytes plus a torn subset of the
//     unsynced ones.
//
// Where a file system refuses O_DIRECT (EINVAL at open), OSFS falls back to
// buffered I/O plus fdatasync; the durability rule is unchanged because every
// acknowledgement still waits for an fdatasync covering its bytes.
package dma
