package wire

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fuzzSeeds are well-formed and hostile inputs to start the fuzzer from.
// testdata/fuzz/FuzzFrame holds them as files too (regenerate with
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
}
