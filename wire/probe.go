package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// MaxAPIKey is the largest Kafka API key this package can decode, so that
// a RequestProbe can count per key in a fixed array.
const MaxAPIKey = kmsg.MaxKey

// APIName is the Kafka name of API key ("Produce", "JoinGroup"), for
// counters and logs outside the protocol edge.
func APIName(key int16) string { return kmsg.NameForKey(key) }

// RequestProbe is implemented by a Backend that counts the requests of its
// connection: the conn calls it on the connection's core for every request
// frame it parses and every response it encodes, so a backend bound to one
// core can keep the counts in plain fields of that core.
type RequestProbe interface {
	// ObserveRequest: a request frame of bytes bytes (size prefix
	// included) for API key.
	ObserveRequest(key int16, bytes int)
	// ObserveResponse: a response frame of bytes bytes for API key.
	ObserveResponse(key int16, bytes int)
}
