// Package group is the consumer group coordinator of Kafka's classic
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, offset commits) as
// a plain state machine.
//
// A Group is driven by events: each request is a method call that carries
// the current time, and Tick(now) advances timers (session expiry, the
// rebalance deadline, the initial rebalance delay). Responses are delivered
// through callbacks, possibly later (a JoinGroup waits for the rest of the
// group). There are no goroutines, locks, clocks or I/O in here: persistence
// of committed offsets and of each group's settled membership (GroupMeta,
// replayed at start so members keep their generation across a broker
// restart) is the host's job (cluster), which the Coordinator asks through
// the Store interface and which answers asynchronously.
//
// Ownership: a Coordinator and its groups belong to the core that owns the
// group's partition of the internal offsets topic; the host calls it only
// on that core.
//
// States, as in Kafka:
//
//	Empty ──join──► PreparingRebalance ──all joined / timeout──► CompletingRebalance ──leader sync──► Stable
//	  ▲                    ▲                                             │                            │
//	  └── last member ─────┴──────── join, leave, session expiry ────────┴────────────────────────────┘
//	      leaves
package group
