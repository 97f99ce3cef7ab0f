package reactor

import "errors"

// Errors returned by the reactor. None of them maps to a Kafka error code:
// they describe the process's own lifecycle, and the wire layer never sees
// them on a request path (a request only exists on a running core).
var (
	// ErrConfig reports an unusable Config (bad CPU list, bad address).
	ErrConfig = errors.New("reactor: invalid config")
	// ErrStopped is returned by calls made after Stop has begun.
	ErrStopped = errors.New("reactor: runtime stopped")
	// ErrBoot reports that Start could not bring every core up.
	ErrBoot = errors.New("reactor: boot failed")
	// ErrNoCore is returned when a CoreID does not name a core of the runtime.
	ErrNoCore = errors.New("reactor: no such core")
)
