package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// rackOf is the rack TestBrokerRacks gives broker id.
func rackOf(id int32) string { return fmt.Sprintf("zone-%c", 'a'+id-1) }

// rackMap maps broker ids to racks ("" for a broker reporting none).
type rackMap map[int32]string

func (m rackMap) add(id int32, rack *string) {
	m[id] = ""
	if rack != nil {
		m[id] = *rack
	}
}

// TestBrokerRacks: three brokers started with --rack register their racks
// in the cluster metadata; every broker's Metadata (what Kafka clients
// read for rack-aware fetching and placement) and DescribeCluster report
// each broker's rack, as do `strand cluster info` and the admin API's
// /v1/brokers, while a topic spread over the three is served.
func TestBrokerRacks(t *testing.T) {
	admin := map[int32]string{}
	for id := int32(1); id <= 3; id++ {
		admin[id] = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	}
	c := startClusterWith(t, 3, func(id int32) []string {
		return []string{"--rack", rackOf(id), "--admin-listen", admin[id]}
	})
	ctx := ctxFor(t, 2*time.Minute)
	const topic = "racked"
	createTopic(t, c.clientOf(1), topic, 3)
	want := rackMap{1: rackOf(1), 2: rackOf(2), 3: rackOf(3)}
	c.checkRacks(ctx, topic, want)

	out, err := exec.Command(strandBin(t), "cluster", "info", "--json", "--brokers", c.procs[2].addr).CombinedOutput()
	if err != nil {
		t.Fatalf("strand cluster info: %v\n%s", err, out)
	}
	var info struct {
		Brokers []struct {
			ID   int32  `json:"id"`
			Rack string `json:"rack"`
		} `json:"brokers"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("strand cluster info --json: %v\n%s", err, out)
	}
	got := rackMap{}
	for _, b := range info.Brokers {
		got[b.ID] = b.Rack
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("strand cluster info: racks %v, want %v\n%s", got, want, out)
	}

	for id := int32(1); id <= 3; id++ {
		resp, err := http.Get("http://" + admin[id] + "/v1/brokers")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var bs struct {
			Brokers []struct {
				NodeID    int32  `json:"node_id"`
				Self      bool   `json:"self"`
				Rack      string `json:"rack"`
				Advertise string `json:"advertise"`
				CoreCount int32  `json:"core_count"`
				Cores     []any  `json:"cores"`
			} `json:"brokers"`
		}
		if err := json.Unmarshal(body, &bs); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /v1/brokers of broker %d: %d %v\n%s", id, resp.StatusCode, err, body)
		}
		// Every broker of the cluster, the one asked first with its
		// cores' details, each with its rack and address.
		got := rackMap{}
		for i, b := range bs.Brokers {
			if b.Self != (i == 0) || b.Self != (b.NodeID == id) || b.Self != (len(b.Cores) > 0) || b.CoreCount != 1 || b.Advertise != c.procs[b.NodeID].addr {
				t.Fatalf("GET /v1/brokers of broker %d: entry %d: %+v\n%s", id, i, b, body)
			}
			got[b.NodeID] = b.Rack
		}
		if !maps.Equal(got, want) {
			t.Fatalf("GET /v1/brokers of broker %d: racks %v, want %v\n%s", id, got, want, body)
		}
	}

	// A restart with another rack re-registers the broker with it.
	p := c.procs[3]
	p.term(30 * time.Second)
	p.extra = append(p.extra, "--rack", "zone-z")
	p.start()
	want[3] = "zone-z"
	c.checkRacks(ctx, topic, want)
}

// checkRacks waits until every broker's Metadata reports want's racks and
// a leader for each partition of topic, then checks DescribeCluster's.
func (c *testCluster) checkRacks(ctx context.Context, topic string, want rackMap) {
	t := c.t
	t.Helper()
	for id := int32(1); id <= 3; id++ {
		waitUntil(t, 20*time.Second, fmt.Sprintf("broker %d's metadata", id), func() error {
			m, err := c.metadataOf(ctx, id, topic)
			if err != nil {
				return err
			}
			got := rackMap{}
			for _, b := range m.Brokers {
				got.add(b.NodeID, b.Rack)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				return fmt.Errorf("racks %v, want %v", got, want)
			}
			if len(m.Topics) != 1 || len(m.Topics[0].Partitions) != 3 {
				return fmt.Errorf("topics %+v", m.Topics)
			}
			for _, p := range m.Topics[0].Partitions {
				if p.ErrorCode != 0 || len(p.Replicas) != 1 || p.Leader != p.Replicas[0] {
					return fmt.Errorf("partition %d: error %d, leader %d, replicas %v", p.Partition, p.ErrorCode, p.Leader, p.Replicas)
				}
			}
			return nil
		})
		dc, err := describeCluster(ctx, c.clientOf(id))
		if err != nil {
			t.Fatal(err)
		}
		got := rackMap{}
		for _, b := range dc.Brokers {
			got.add(b.NodeID, b.Rack)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("DescribeCluster from broker %d: racks %v, want %v", id, got, want)
		}
	}
}
