package wire

import (
	"encoding/binary"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request frame (request header v1, or v2 for flexible versions):
//
//	+--------+---------+-------------+----------------+-----------------+--------------+------+
//	| size   | api key | api version | correlation id | client id       | tagged fields| body |
//	| int32  | int16   | int16       | int32          | int16 len+bytes | flex only    |      |
//	+--------+---------+-------------+----------------+-----------------+--------------+------+
//
// size excludes itself. The client id is a plain nullable string even in
// flexible headers. Response frame:
//
//	+--------+----------------+------------------------------------+------+
//	| size   | correlation id | tagged fields (0x00)               | body |
//	| int32  | int32          | flexible and not ApiVersions only  |      |
//	+--------+----------------+------------------------------------+------+
//
// ApiVersions responses always use header v0, even with a flexible body, so
// that a client that does not know the broker's versions yet can read them.

const (
	sizeLen       = 4
	minHeaderLen  = 2 + 2 + 4 + 2 // key, version, correlation id, client id length
	respHeaderLen = 4 + 4 + 1
)

// header is a parsed request header.
type header struct {
	key      int16
	version  int16
	corr     int32
	clientID []byte // aliases the frame: copy before keeping
}

// parseHeader reads the fixed part of a request header from frame (the bytes
// after the size prefix) and returns the rest, starting at the tagged fields
// (flexible versions) or the body.
func parseHeader(frame []byte) (h header, rest []byte, ok bool) {
	if len(frame) < minHeaderLen {
		return h, nil, false
	}
	h.key = int16(binary.BigEndian.Uint16(frame[0:]))
	h.version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.corr = int32(binary.BigEndian.Uint32(frame[4:]))
	idLen := int(int16(binary.BigEndian.Uint16(frame[8:])))
	rest = frame[minHeaderLen:]
	if idLen > 0 { // -1 is a null client id
		if idLen > len(rest) {
			return h, nil, false
		}
		h.clientID = rest[:idLen:idLen]
		rest = rest[idLen:]
	}
	return h, rest, true
}

// skipHeaderTags skips the header's tagged fields, bounded by the bytes that
// are really there (see shape.go for why kmsg.SkipTags is not used).
func skipHeaderTags(b []byte) ([]byte, bool) {
	s := &shape{b: b, flex: true}
	s.tags(nil)
	return s.b, s.ok()
}

// bufPool recycles response buffers. After Writev returns, gnet has either
// written a buffer or copied what was left into its own outbound buffer, so
// the slices can be reused at once.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// pooledMax bounds what goes back into the pool: large fetch responses are
// left to the GC instead of pinning their memory in the pool.
const pooledMax = 1 << 20

func getBuf() []byte { return (*bufPool.Get().(*[]byte))[:0] }

func putBuf(b []byte) {
	if cap(b) == 0 || cap(b) > pooledMax {
		return
	}
	b = b[:0]
	bufPool.Put(&b)
}

// appendResponse appends one whole response frame for resp to dst.
func appendResponse(dst []byte, corr int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		dst = append(dst, 0) // empty response-header tagged fields
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-sizeLen))
	return dst
}
