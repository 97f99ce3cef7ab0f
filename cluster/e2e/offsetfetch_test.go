package e2e

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetFetchSameGroupTwice: an OffsetFetch v8 that names one group
// twice, asking for different partitions each time, gets each part answered
// for what that part asked (the fan-out once matched parts by group name, so
// both got the last part's partitions).
func TestOffsetFetchSameGroupTwice(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	cl := newClient(t, n.Addr())
	createTopic(t, cl, "of", 2)
	offsetCommit(t, cl, "g", "of", map[int32]int64{0: 10, 1: 20})

	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	for _, p := range []int32{0, 1} {
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = "g"
		tp := kmsg.NewOffsetFetchRequestGroupTopic()
		tp.Topic, tp.Partitions = "of", []int32{p}
		g.Topics = append(g.Topics, tp)
		req.Groups = append(req.Groups, g)
	}
	resp, err := req.RequestWith(ctxFor(t, 30*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Groups) != 2 {
		t.Fatalf("%d groups answered, want 2", len(resp.Groups))
	}
	for i, want := range []struct {
		part   int32
		offset int64
	}{{0, 10}, {1, 20}} {
		g := resp.Groups[i]
		if len(g.Topics) != 1 || len(g.Topics[0].Partitions) != 1 {
			t.Fatalf("part %d answered %+v", i, g.Topics)
		}
		if p := g.Topics[0].Partitions[0]; p.Partition != want.part || p.Offset != want.offset {
			t.Fatalf("part %d: partition %d offset %d, want %d %d", i, p.Partition, p.Offset, want.part, want.offset)
		}
	}
}
