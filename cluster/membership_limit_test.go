package cluster

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAddRaftVoterLimit: AddRaftVoter needs only the cluster id, which
// DescribeCluster tells any client, so the metadata group's size is
// bounded: past --max-brokers a join is refused with POLICY_VIOLATION
// and a log line, and the membership is unchanged.
func TestAddRaftVoterLimit(t *testing.T) {
	logs := &syncBuf{}
	n, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", MaxBrokers: 1,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrAddRaftVoterRequest()
	req.ClusterID, req.VoterID = kmsg.StringPtr(dc.ClusterID), 7
	l := kmsg.NewAddRaftVoterRequestListener()
	l.Name, l.Host, l.Port = "CONTROLLER", "127.0.0.1", 1
	req.Listeners = append(req.Listeners, l)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if kerr.ErrorForCode(resp.ErrorCode) != kerr.PolicyViolation || resp.ErrorMessage == nil || !strings.Contains(*resp.ErrorMessage, "--max-brokers") {
		t.Fatalf("AddRaftVoter past --max-brokers: code %d %v, want POLICY_VIOLATION naming --max-brokers", resp.ErrorCode, resp.ErrorMessage)
	}
	voters, nonVoting, err := n.raft.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(voters)+len(nonVoting) != 1 {
		t.Fatalf("members after a refused join: voters %v non-voting %v", voters, nonVoting)
	}
	if !strings.Contains(logs.String(), "broker join refused") {
		t.Fatalf("no log line for the refused join:\n%s", logs.String())
	}
}
