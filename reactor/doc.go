// Package reactor runs Strand's thread-per-core runtime: one reactor (Core)
// per CPU, each a gnet event loop on a locked, pinned OS thread that owns its
// own io_uring engine and the partitions placed on it. Nothing on the data
// path takes a lock; work for another core travels as a message.
//
// # Who owns what
//
//   - A Core's loop thread owns: its dma.Engine (created on that thread, so
//     io_uring's single-issuer rule holds), its timers, the consumer side of
//     every lane into it, the producer side and overflow of every lane out of
//     it, and whatever higher layers place on it (shard.Log, connections).
//     Its methods are called on that thread; AssertOwned checks it under the
//     `invariants` build tag and in -race builds (so `make test` runs it).
//   - Runtime's methods (Cores, Core, Post, Addr, Stop) and Core's ID, CPU,
//     TID and Stats are safe from any goroutine.
//   - Goroutines the package starts: the gnet.Run goroutine, gnet's loops
//     (one per core plus the acceptor), and one completion reaper per core.
//     Stop ends all of them.
//
// # Main types
//
//   - Runtime: Start / Stop, the core table, Post (from any goroutine).
//   - Core: ID, IO, Send, After, Flush, AssertOwned, Stats; Busy and
//     IOStats (busy time, I/O counts and latencies: plain fields, read on
//     the core's thread, e.g. by a message posted to it).
//   - CoreOf(conn): the core owning a gnet connection.
//
// # Start-up: finding the loops
//
// gnet has no API to list its loops. Start runs gnet with ReusePort=false
// (one acceptor thread hands sockets to loops round-robin), then dials its
// own listener one probe at a time. Each probe's OnOpen runs on the loop that
// got it; there the reactor locks the thread a second time (see Stop), pins
// it with sched_setaffinity(0, {cpu}), records its tid, creates the
// dma.Engine and starts the reaper. Probes are recognised by the local port
// they bound before connect(2), so there is no race with real clients; until
// every core is up, real clients are reset at once and the protocol handler
// never sees a probe. Client connections are then spread round-robin. With
// Config.HoldClients, clients arriving between boot and Runtime.Serve are
// held (accepted, unread, unseen by the handler) and handed over at Serve.
//
// # Wake-ups
//
// Everything a core does outside a gnet callback runs in its service task:
// drain inbound lanes, retry overflow, fire due timers, Engine.Poll. Anyone
// who gives a core work (a Send, an I/O completion seen by the reaper, a
// runtime timer) sets the core's wakePending flag with a CAS and, only on the
// false→true transition, queues the service task with EventLoop.Execute; the
// service clears the flag before it reads anything, so no work is missed and
// a busy core gets one Execute per batch, not per message. Lanes are bounded
// SPSC rings per ordered core pair; a full ring spills into the sender's own
// overflow list, which the receiver asks the sender to retry once it has
// made room (see mailbox.go). After every protocol callback, message, timer
// and posted task the reactor retries overflow and calls Engine.Poll, so I/O
// queued by user code is submitted before the loop returns to epoll_wait.
//
// Completions: gnet's poller is private, so a reaper goroutine per core reads
// a dup of the engine's eventfd through Go's netpoller (no OS thread blocks)
// and wakes the core; Poll, and so every completion callback, runs on the
// loop thread.
//
// # GOMAXPROCS
//
// Start sets GOMAXPROCS to cores+1 (Config.GOMAXPROCS overrides; Stop
// restores the old value). A loop thread holds a P only while it runs
// callbacks; in epoll_wait it is in a syscall and its P is handed off. When
// every core is busy at once, though, all n Ps are held by loops, and the
// work the cores themselves depend on — GC assists and background marking,
// runtime timers (which drive Core.After), the reapers that deliver I/O
// completions, and later the consensus library's goroutines — would wait for
// a loop to go idle. The extra P keeps that work running; the OS then
// time-slices it with the pinned loop threads, which costs far less than
// stalling completions. Deployments with heavy non-reactor work can raise it.
//
// # Stall detector
//
// Every callback, message, timer, posted task and completion batch is timed;
// one that runs past Config.StallThreshold is logged at Warn with the core,
// its CPU and what it was (for messages and timers, the function's name),
// rate-limited to one line per core per second. Stats.Stalls counts all.
// Work marked with Core.ExpectSlow (the cluster marks opening and recovering
// logs at start-up and closing them at shutdown) is counted, also in
// Stats.ExpectedStalls, but logged only at Debug: a warning should mean
// something a client could have noticed.
//
// # Stop
//
// Stop lets every core drain (in-flight I/O, queued messages, overflow),
// closes a gate so reapers, timer callbacks and Post stop touching loops,
// stops the reapers, stops gnet (clients get OnClose on their core), and
// once the loops have exited closes the rings. Because of the extra
// LockOSThread taken at boot, each loop goroutine ends still locked and Go
// terminates its thread, so no thread pinned to one CPU is reused.
package reactor
