package wire

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// hasErrorCode reports whether key's response at version v carries a
// top-level ErrorCode on the wire.
func hasErrorCode(key, v int16) bool {
	resp := kmsg.ResponseForKey(key)
	resp.SetVersion(v)
	f := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode")
	if !f.IsValid() || f.Kind() != reflect.Int16 {
		return false
	}
	plain := resp.AppendTo(nil)
	f.SetInt(1)
	return string(plain) != string(resp.AppendTo(nil))
}

// TestUnservedKeysAnswered sends every key kmsg knows and Strand does not
// serve, at versions 0 and kmsg's maximum, each on a fresh connection.
// None is advertised; each one whose response has a top-level error code
// is answered UNSUPPORTED_VERSION and leaves the connection open; only the
// others close it (nothing in their response could say why).
func TestUnservedKeysAnswered(t *testing.T) {
	plain := newHarness(Config{})
	adv := keysOf(plain.do(t, kmsg.NewPtrApiVersionsRequest(), 3).(*kmsg.ApiVersionsResponse))
	answered, closed := 0, 0
	got := map[int16]bool{} // key -> answered at kmsg's max version
	for key := int16(0); key < 200; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil {
			continue
		}
		if _, _, ok := versionRange(key, true); ok {
			continue
		}
		if _, ok := adv[key]; ok {
			t.Fatalf("%s is advertised but not served", kmsg.NameForKey(key))
		}
		for _, v := range []int16{0, req.MaxVersion()} {
			h := newHarness(Config{})
			req.SetVersion(v)
			hdr := encodeRequest(kmsg.RequestForKey(key), 9, "c")
			// Header only: the answer must not depend on the body.
			frame := append([]byte(nil), hdr[:4+8+2+1]...)
			frame[4+2], frame[4+3] = byte(v>>8), byte(v)
			if req.IsFlexible() {
				frame = append(frame, 0)
			}
			frame[3] = byte(len(frame) - 4)
			h.traffic(frame, 100)
			if !hasErrorCode(key, v) {
				if !h.c.closed {
					t.Fatalf("%s v%d: no error field, but the connection stayed open", kmsg.NameForKey(key), v)
				}
				closed++
				got[key] = false
				continue
			}
			fs := h.frames(t)
			if len(fs) != 1 || h.c.closed {
				t.Fatalf("%s v%d: %d frames, closed %v", kmsg.NameForKey(key), v, len(fs), h.c.closed)
			}
			resp := kmsg.ResponseForKey(key)
			resp.SetVersion(v)
			body := fs[0].body
			if resp.IsFlexible() {
				body = body[1:]
			}
			if err := resp.ReadFrom(body); err != nil {
				t.Fatalf("%s v%d: %v", kmsg.NameForKey(key), v, err)
			}
			if code := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode").Int(); int16(code) != kerr.UnsupportedVersion.Code {
				t.Fatalf("%s v%d: code %d, want UNSUPPORTED_VERSION", kmsg.NameForKey(key), v, code)
			}
			answered++
			got[key] = true
		}
	}
	t.Logf("%d unserved key/versions answered UNSUPPORTED_VERSION, %d closed", answered, closed)
	for key, want := range map[kmsg.Key]bool{
		kmsg.SASLHandshake:      true,
		kmsg.DescribeACLs:       true,
		kmsg.DescribeCluster:    true,
		kmsg.AddPartitionsToTxn: true, // at v4+, where it has an error code
		kmsg.WriteTxnMarkers:    false,
	} {
		if got[key.Int16()] != want {
			t.Errorf("%s answered %v, want %v", kmsg.NameForKey(key.Int16()), got[key.Int16()], want)
		}
	}
}

// TestKversionGuess checks what franz-go's version probe makes of the
// advertised set. With every key Kafka 3.0 has that Strand serves at least
// at 3.0's version, and the keys Strand does not serve skipped, it guesses
// "between v3.0 and v3.1": Fetch and Produce stop at 12, before the topic
// IDs of 3.1. Without skipping, the guess stays "between v0.9.0 and
// v0.10.0", because kversion wants every key of a release and Strand does
// not serve SaslHandshake (17, new in 0.10.0) or any later security,
// transaction or replica-management key; advertising those would be false.
func TestKversionGuess(t *testing.T) {
	h, _ := newGroupHarness()
	vs := kversion.FromApiVersionsResponse(h.do(t, kmsg.NewPtrApiVersionsRequest(), 3).(*kmsg.ApiVersionsResponse))
	var unserved []int16
	for key := int16(0); key < 200; key++ {
		if _, ok := vs.LookupMaxKeyVersion(key); !ok {
			unserved = append(unserved, key)
		}
	}
	kversion.V3_0_0().EachMaxKeyVersion(func(k, v int16) {
		if ours, ok := vs.LookupMaxKeyVersion(k); ok && ours < v {
			t.Errorf("%s: Strand advertises up to v%d, Kafka 3.0 v%d", kmsg.NameForKey(k), ours, v)
		}
	})
	if g := vs.VersionGuess(kversion.SkipKeys(unserved...)); g != "between v3.0 and v3.1" {
		t.Errorf("guess over the served keys: %q, want between v3.0 and v3.1", g)
	}
	if g := vs.VersionGuess(); g != "between v0.9.0 and v0.10.0" {
		t.Errorf("plain guess %q: if Strand now serves SaslHandshake, update the doc comment and docs/COMPATIBILITY.md", g)
	}
}
