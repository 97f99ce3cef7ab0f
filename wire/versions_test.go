package wire

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fill sets every exported field of a kmsg struct to random values: short
// slices, strings, nil or non-nil pointers, and unknown tagged fields, so
// that encodings exercise every layout branch.
func fill(rng *rand.Rand, v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(rng.Intn(200) - 50))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(rng.Intn(200)))
	case reflect.Bool:
		v.SetBool(rng.Intn(2) == 1)
	case reflect.Float64:
		v.SetFloat(rng.Float64())
	case reflect.String:
		v.SetString(randString(rng))
	case reflect.Array:
		for i := range v.Len() {
			fill(rng, v.Index(i), depth)
		}
	case reflect.Pointer:
		if rng.Intn(3) == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(rng, p.Elem(), depth)
		v.Set(p)
	case reflect.Slice:
		if depth > 4 || rng.Intn(4) == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		n := rng.Intn(3)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(rng, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Struct:
		if tags, ok := v.Addr().Interface().(*kmsg.Tags); ok {
			for range rng.Intn(3) {
				tags.Set(uint32(20+rng.Intn(50)), []byte(randString(rng)))
			}
			return
		}
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() && f.Name != "Version" {
				fill(rng, v.Field(i), depth)
			}
		}
	}
}

func randString(rng *rand.Rand) string {
	b := make([]byte, rng.Intn(12))
	for i := range b {
		b[i] = byte('a' + rng.Intn(26))
	}
	return string(b)
}

// servedKeys are the API keys this package implements.
func servedKeys() []int16 {
	var keys []int16
	for _, a := range append(append([]apiRange(nil), advertised...), groupAdvertised...) {
		keys = append(keys, a.key)
	}
	return keys
}

// TestShapeMatchesKmsg checks the pre-check against kmsg's own encodings
// of random requests at every version kmsg knows for the served keys: each
// must be accepted and consumed exactly, and decode back to the same bytes.
func TestShapeMatchesKmsg(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	for _, key := range servedKeys() {
		maxV := kmsg.RequestForKey(key).MaxVersion()
		for v := int16(0); v <= maxV; v++ {
			for range 60 {
				req := kmsg.RequestForKey(key)
				fill(rng, reflect.ValueOf(req).Elem(), 0)
				req.SetVersion(v)
				body := req.AppendTo(nil)
				rest, ok := walkShape(key, v, req.IsFlexible(), body)
				if !ok || len(rest) != 0 {
					t.Fatalf("%s v%d: shape ok=%v left %d bytes of a kmsg encoding (% x)", kmsg.NameForKey(key), v, ok, len(rest), body)
				}
				back := kmsg.RequestForKey(key)
				back.SetVersion(v)
				if err := back.ReadFrom(body); err != nil {
					t.Fatalf("%s v%d: decode: %v", kmsg.NameForKey(key), v, err)
				}
				if again := back.AppendTo(nil); !bytes.Equal(again, body) {
					t.Fatalf("%s v%d: request does not round-trip", kmsg.NameForKey(key), v)
				}
			}
		}
	}
}

// TestAdvertisedResponsesRoundTrip encodes and decodes random responses at
// every advertised version.
func TestAdvertisedResponsesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, a := range advertised {
		for v := a.min; v <= a.max; v++ {
			for range 30 {
				resp := kmsg.ResponseForKey(a.key)
				fill(rng, reflect.ValueOf(resp).Elem(), 0)
				resp.SetVersion(v)
				body := resp.AppendTo(nil)
				back := kmsg.ResponseForKey(a.key)
				back.SetVersion(v)
				if err := back.ReadFrom(body); err != nil {
					t.Fatalf("%s v%d response: %v", kmsg.NameForKey(a.key), v, err)
				}
				if !bytes.Equal(back.AppendTo(nil), body) {
					t.Fatalf("%s v%d response does not round-trip", kmsg.NameForKey(a.key), v)
				}
			}
		}
	}
}

// TestShapeStopsTagBomb: a flexible body whose tag count is 2^32-1 makes
// kmsg spin for ~45 s; the pre-check rejects it at once.
func TestShapeStopsTagBomb(t *testing.T) {
	bomb := []byte{1, 1, 0x8f, 0xff, 0xff, 0xff, 0x0f}
	start := time.Now()
	if checkShape(kmsg.ApiVersions.Int16(), 3, true, bomb) {
		t.Fatal("tag bomb accepted")
	}
	if _, ok := skipHeaderTags(bomb[2:]); ok {
		t.Fatal("header tag bomb accepted")
	}
	// Same inside a known nested tag (FetchRequest tag 1, ReplicaState).
	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(12)
	body := fetch.AppendTo(nil)
	body = body[:len(body)-1]                            // drop the empty top-level tag section
	nested := []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2} // replica id, epoch
	nested = append(nested, 0x8f, 0xff, 0xff, 0xff, 0x0f)
	body = append(body, 1, 1, byte(len(nested)))
	body = append(body, nested...)
	if checkShape(kmsg.Fetch.Int16(), 12, true, body) {
		t.Fatal("nested tag bomb accepted")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("rejecting bombs took %v", d)
	}
}

// TestEveryAdvertisedVersionServed sends a request at every advertised
// version and decodes the answer at that version.
func TestEveryAdvertisedVersionServed(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 1, nil)
	for _, a := range advertised {
		for v := a.min; v <= a.max; v++ {
			req := kmsg.RequestForKey(a.key)
			switch r := req.(type) {
			case *kmsg.FetchRequest:
				r.SessionEpoch = -1
			case *kmsg.ProduceRequest:
				r.Acks = -1 // acks=0 gets no response
			}
			resp := h.do(t, req, v)
			if resp.GetVersion() != v {
				t.Fatalf("%s v%d answered as v%d", kmsg.NameForKey(a.key), v, resp.GetVersion())
			}
		}
	}
}

func TestApiVersionsNegotiation(t *testing.T) {
	ts := startServer(t, nil)
	rc := dialRaw(t, ts.addr)

	// KIP-511: above our max -> v0 body, error 35, full key list.
	rc.write(encodeRequest(versioned(kmsg.NewPtrApiVersionsRequest(), 5), 1, "kgo"))
	corr, body, err := rc.readFrame()
	if err != nil || corr != 1 {
		t.Fatalf("read: %v corr %d", err, corr)
	}
	v0 := kmsg.NewPtrApiVersionsResponse()
	if err := v0.ReadFrom(body); err != nil || v0.ErrorCode != errUnsupportedVersion {
		t.Fatalf("v5 request: err %v code %d", err, v0.ErrorCode)
	}
	if !reflect.DeepEqual(keysOf(v0), keysOf(&kmsg.ApiVersionsResponse{ApiKeys: apiVersionsKeys(false)})) {
		t.Fatalf("downgrade key list %v", keysOf(v0))
	}

	// v3: flexible body, v0 response header (no tag byte).
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "wire-test", "1"
	rc.send(req, 3, 2)
	v3 := rc.recv(req, 2).(*kmsg.ApiVersionsResponse)
	if v3.ErrorCode != 0 || len(v3.ApiKeys) != len(advertised) {
		t.Fatalf("v3: code %d keys %d", v3.ErrorCode, len(v3.ApiKeys))
	}
	for _, k := range v3.ApiKeys {
		if min, max, ok := versionRange(k.ApiKey, false); !ok || min != k.MinVersion || max != k.MaxVersion {
			t.Fatalf("key %d advertised %d-%d", k.ApiKey, k.MinVersion, k.MaxVersion)
		}
	}
}

func versioned(r kmsg.Request, v int16) kmsg.Request { r.SetVersion(v); return r }

func keysOf(r *kmsg.ApiVersionsResponse) map[int16][2]int16 {
	m := map[int16][2]int16{}
	for _, k := range r.ApiKeys {
		m[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	return m
}

func TestUnsupportedVersions(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 1, nil)

	// Produce v0-v2 are advertised (librdkafka's compression check wants
	// v0) but carry v0/v1 message sets, refused per partition.
	v1set := makeBatch([]byte("x"))
	v1set[16] = 1
	if p := h.do(t, produceReq("t", 0, 1, v1set), 2).(*kmsg.ProduceResponse); p.Topics[0].Partitions[0].ErrorCode != errInvalidRecord {
		t.Fatalf("produce v2 with a v1 message set: %s", errName(p.Topics[0].Partitions[0].ErrorCode))
	}
	// Below the floor and above the ceiling but still parseable: the
	// API's own response with UNSUPPORTED_VERSION.
	f3 := h.do(t, fetchReq(1<<20, 1<<20, 0), 3).(*kmsg.FetchResponse)
	if f3.Topics[0].Partitions[0].ErrorCode != errUnsupportedVersion {
		t.Fatalf("fetch v3: %s", errName(f3.Topics[0].Partitions[0].ErrorCode))
	}
	f := fetchReq(1<<20, 1<<20, 0)
	f.Topics[0].TopicID = [16]byte{1}
	fr := h.do(t, f, 13).(*kmsg.FetchResponse)
	if fr.ErrorCode != errUnsupportedVersion || fr.Topics[0].Partitions[0].ErrorCode != errUnsupportedVersion {
		t.Fatalf("fetch v13: %s", errName(fr.ErrorCode))
	}
	if m := h.do(t, kmsg.NewPtrMetadataRequest(), 13).(*kmsg.MetadataResponse); m.ErrorCode != errUnsupportedVersion {
		t.Fatalf("metadata v13: %s", errName(m.ErrorCode))
	}
	// Beyond what kmsg can parse: close.
	bad := encodeRequest(versioned(kmsg.NewPtrMetadataRequest(), 12), 9, "c")
	binary.BigEndian.PutUint16(bad[6:], 99)
	if !h.traffic(bad, 10) {
		t.Fatal("unparseable version did not close the connection")
	}
}
