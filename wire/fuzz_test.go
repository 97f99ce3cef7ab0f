package wire

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fuzzSeeds are well-formed and hostile inputs to start the fuzzer from.
// testdata/fuzz/FuzzFrame holds them as files too, and FuzzRequest's seeds
// are in testdata/fuzz/FuzzRequest (regenerate both with
// WIRE_WRITE_SEEDS=1 go test -ldflags=-checklinkname=0 -run TestWriteFuzzSeeds ./wire/).
func fuzzSeeds() map[string][]byte {
	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "fuzz", "1"
	md := kmsg.NewPtrMetadataRequest()
	pr := produceReq("t", 1, -1, makeBatch([]byte("seed"), []byte("two")))
	fr := fetchReq(1<<20, 1<<20, 0, 1)
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "new", NumPartitions: 2, ReplicationFactor: 1}}
	seeds := map[string][]byte{
		"api_versions_v3": encodeRequest(versioned(av, 3), 1, "f"),
		"metadata_v12":    encodeRequest(versioned(md, 12), 2, "f"),
		"produce_v9":      encodeRequest(versioned(pr, 9), 3, "f"),
		"fetch_v12":       encodeRequest(versioned(fr, 12), 4, "f"),
		"create_topics_5": encodeRequest(versioned(ct, 5), 5, "f"),
		"size_2gib":       {0x7f, 0xff, 0xff, 0xff, 0, 3},
		"tag_bomb": append(binary.BigEndian.AppendUint32(nil, 18),
			0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0, 1, 1, 0x8f, 0xff, 0xff, 0xff, 0x0f),
	}
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.ProtocolType = "g", "consumer"
	jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1}}}
	seeds["join_group_v6"] = encodeRequest(versioned(jg, 6), 6, "f")
	seeds["pipelined"] = append(append([]byte(nil), seeds["produce_v9"]...), seeds["fetch_v12"]...)
	return seeds
}

// FuzzFrame feeds arbitrary bytes, split into two reads, to one
// connection's state machine over the in-memory broker. It checks that
// nothing panics, that every complete frame is consumed or the connection
// closed, and that nothing grows past its bounds.
func FuzzFrame(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxReq, maxInflight = 1 << 16, 8
		h := newHarness(Config{MaxRequestBytes: maxReq, MaxInflightRequests: maxInflight})
		// With a GroupBackend, so that group keys are admitted too.
		h.c = newConn(h.srv, h.fc, &groupSession{memSession: h.c.be.(*memSession)})
		h.broker.createTopic("t", 2, nil)
		h.broker.autoCreate = true
		defer h.close() // cancels long-poll timers and watches
		cut := 0
		if len(data) > 0 {
			cut = int(data[0]) % (len(data) + 1)
		}
		if !h.traffic(data[:cut], 10_000) {
			h.traffic(data[cut:], 10_000)
		}
		if p := h.srv.Stats().Panics; p != 0 {
			t.Fatalf("%d panics: %v", p, h.logs.lines)
		}
		if len(h.c.queue) > maxInflight {
			t.Fatalf("%d requests in flight, bound %d", len(h.c.queue), maxInflight)
		}
		if !h.c.closed && !h.c.paused && len(h.fc.in) >= 4 {
			size := int(int32(binary.BigEndian.Uint32(h.fc.in)))
			if size >= 0 && size <= maxReq && len(h.fc.in) >= 4+size {
				t.Fatalf("a complete %d-byte frame was left unparsed", size)
			}
		}
		stored := 0
		for _, tp := range h.broker.topics {
			for _, p := range tp.parts {
				for _, b := range p.batches {
					stored += len(b)
				}
			}
		}
		if stored > len(data) {
			t.Fatalf("broker stores %d bytes from %d bytes of input", stored, len(data))
		}
	})
}

// requestSeeds are kmsg encodings of randomly filled requests, one for
// every version kmsg knows of every key the broker serves (the broker parses
// all of them; versions it does not advertise get UNSUPPORTED_VERSION after
// the parse), as FuzzRequest takes them: key, version, body. Two hostile
// bodies follow: a flexible body whose tag count claims 2^32-1 fields
// (kmsg alone would loop ~45 s on it) and an array count past the input.
func requestSeeds() map[string][]byte {
	rng := rand.New(rand.NewSource(9))
	seeds := map[string][]byte{}
	for _, key := range servedKeys() {
		maxV := kmsg.RequestForKey(key).MaxVersion()
		for v := int16(0); v <= maxV; v++ {
			req := kmsg.RequestForKey(key)
			fill(rng, reflect.ValueOf(req).Elem(), 0)
			req.SetVersion(v)
			name := fmt.Sprintf("%s_v%d", strings.ToLower(kmsg.NameForKey(key)), v)
			seeds[name] = req.AppendTo([]byte{byte(key), byte(v)})
		}
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	enc := md.AppendTo([]byte{byte(kmsg.Metadata), 12})
	seeds["metadata_v12_tag_bomb"] = append(enc[:len(enc)-1], 0x8f, 0xff, 0xff, 0xff, 0x0f)
	seeds["produce_v3_huge_array"] = []byte{byte(kmsg.Produce), 3, 0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30, 0x7f, 0xff, 0xff, 0xff}
	return seeds
}

// FuzzRequest runs the decoding every served request goes through: the
// broker's shape pre-check, then (if it passes) kmsg's ReadFrom. The first
// byte picks the API key (one the broker does not serve is mapped onto one
// it does), the second the version (modulo kmsg's maximum), the rest is the
// body. Neither may panic or spin (the fuzzer reports an input that hangs),
// and what kmsg accepts must, encoded again, pass the pre-check whole.
func FuzzRequest(f *testing.F) {
	for _, s := range requestSeeds() {
		f.Add(s)
	}
	keys := servedKeys()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		key := int16(data[0])
		if _, _, ok := versionRange(key, true); !ok {
			key = keys[int(data[0])%len(keys)]
		}
		req := kmsg.RequestForKey(key)
		v := int16(data[1]) % (req.MaxVersion() + 1)
		req.SetVersion(v)
		body := data[2:]
		if !checkShape(key, v, req.IsFlexible(), body) {
			return
		}
		if err := req.ReadFrom(body); err != nil {
			return
		}
		enc := req.AppendTo(nil)
		if rest, ok := walkShape(key, v, req.IsFlexible(), enc); !ok || len(rest) != 0 {
			t.Fatalf("%s v%d: kmsg's re-encoding fails the shape check (ok=%v, %d bytes left)", kmsg.NameForKey(key), v, ok, len(rest))
		}
	})
}

func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("WIRE_WRITE_SEEDS") != "1" {
		t.Skip("WIRE_WRITE_SEEDS=1 go test -ldflags=-checklinkname=0 -run TestWriteFuzzSeeds ./wire/ rewrites testdata/fuzz/FuzzFrame")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzFrame")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range fuzzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join("testdata", "fuzz", "FuzzRequest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range requestSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
