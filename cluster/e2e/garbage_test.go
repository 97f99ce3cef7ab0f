package e2e

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// frame prefixes body with its length.
func frame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// header builds a request header v1 (key, version, correlation id, client
// id "evil").
func header(key, version int16, corr int32) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	return append(b, "evil"...)
}

// abuse is one kind of bad input on a fresh connection; mustClose says the
// broker has to close that connection.
type abuse struct {
	name      string
	bytes     func(rng *rand.Rand) []byte
	mustClose bool
}

var abuses = []abuse{
	{"2 GiB size prefix", func(*rand.Rand) []byte { return []byte{0x80, 0, 0, 0, 0, 0, 0, 0} }, true},
	{"2 GiB - 1 size prefix", func(*rand.Rand) []byte { return []byte{0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4} }, true},
	{"negative size prefix", func(*rand.Rand) []byte { return []byte{0xff, 0xff, 0xff, 0xfe} }, true},
	{"frame shorter than a header", func(*rand.Rand) []byte { return frame([]byte{0, 18, 0}) }, true},
	{"unknown api key 9999", func(*rand.Rand) []byte { return frame(header(9999, 0, 1)) }, true},
	{"unknown api key -1", func(*rand.Rand) []byte { return frame(header(-1, 0, 1)) }, true},
	// Unserved keys: OffsetForLeaderEpoch's response has no error code to
	// answer with, so it closes; AllocateProducerIDs gets UNSUPPORTED_VERSION.
	{"unserved api key 23", func(*rand.Rand) []byte { return frame(header(23, 0, 1)) }, true},
	{"unserved api key 67", func(*rand.Rand) []byte { return frame(header(67, 0, 1)) }, false},
	{"produce v99", func(*rand.Rand) []byte { return frame(header(0, 99, 1)) }, true},
	{"metadata v4 with a garbage body", func(rng *rand.Rand) []byte {
		body := make([]byte, 64)
		rng.Read(body)
		body[0] = 0x7f // topic count far beyond the bytes present
		return frame(append(header(3, 4, 1), body...))
	}, true},
	{"client id longer than the frame", func(*rand.Rand) []byte {
		h := header(18, 0, 1)
		binary.BigEndian.PutUint16(h[8:], 30000)
		return frame(h)
	}, true},
	{"truncated frame, then hang up", func(rng *rand.Rand) []byte {
		f := frame(append(header(3, 4, 1), make([]byte, 100)...))
		return f[:4+rng.Intn(len(f)-5)]
	}, false},
	{"random bytes", func(rng *rand.Rand) []byte {
		b := make([]byte, 1+rng.Intn(64<<10))
		rng.Read(b)
		return b
	}, false},
}

// TestGarbageDoesNotDisturbProducers sends garbage, truncated frames, 2 GiB
// size prefixes and unknown API keys on raw connections while a kgo
// producer writes 50,000 records on its own connections: every record is
// acknowledged at its expected offset and reads back intact, every bad
// connection that must be closed is, and the broker keeps serving.
func TestGarbageDoesNotDisturbProducers(t *testing.T) {
	const (
		parts   = 4
		perPart = 12_500
	)
	n := startNode(t, testDataDir(t), nil)
	addr := n.Addr()
	cl := produceClient(t, addr)
	createTopic(t, cl, "steady", parts)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var attacks atomic.Int64
	errs := make(chan error, 64)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a := abuses[(i+w)%len(abuses)]
				if err := attack(addr, a, rng); err != nil {
					select {
					case errs <- fmt.Errorf("%s: %w", a.name, err):
					default:
					}
					return
				}
				attacks.Add(1)
			}
		}()
	}
	produceSeq(t, cl, "steady", parts, perPart, 2)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d bad connections while producing %d records", attacks.Load(), parts*perPart)
	if attacks.Load() < int64(len(abuses)) {
		t.Errorf("only %d bad connections ran; want every kind at least once", attacks.Load())
	}

	// Still serving: a new raw connection gets ApiVersions answered, and
	// every record reads back.
	r := dialRaw(t, addr)
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	if resp, err := r.roundTrip(av, 10*time.Second); err != nil || resp.(*kmsg.ApiVersionsResponse).ErrorCode != 0 {
		t.Fatalf("ApiVersions after the abuse: %v %+v", err, resp)
	}
	verifyTopic(t, addr, "steady", counts(parts, perPart), 2*time.Minute)
}

// attack opens a connection, sends a's bytes, and checks that the broker
// closes the connection when it must (without answering anything).
func attack(addr string, a abuse, rng *rand.Rand) error {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(a.bytes(rng)); err != nil {
		if a.mustClose {
			return nil // closed so fast that the write saw it
		}
		return err
	}
	if !a.mustClose {
		return nil // hang up with the request half sent
	}
	buf := make([]byte, 256)
	n, err := nc.Read(buf)
	if n > 0 {
		return fmt.Errorf("broker answered %d bytes instead of closing", n)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return fmt.Errorf("broker kept the connection open for 10 s")
	}
	return nil
}
