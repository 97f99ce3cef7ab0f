package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestClusterInfo(t *testing.T) {
	ok(t, "", "topic", "create", uniq("cli-cluster"))
	out := ok(t, "", "cluster", "info")
	for _, want := range []string{"CLUSTER ID", "CONTROLLER", "TOPICS", "BROKER", "HOST", "PORT"} {
		if !strings.Contains(out, want) {
			t.Fatalf("cluster info lacks %q:\n%s", want, out)
		}
	}
	var info struct {
		ClusterID  string `json:"cluster_id"`
		Controller int32  `json:"controller"`
		Topics     int    `json:"topics"`
		Brokers    []struct {
			ID   int32  `json:"id"`
			Host string `json:"host"`
			Port int32  `json:"port"`
		} `json:"brokers"`
	}
	decode(t, ok(t, "", "cluster", "info", "--json"), &info)
	host, port, _ := net.SplitHostPort(testBroker)
	if len(info.Brokers) != 1 || info.Brokers[0].Host != host || port != strconv.Itoa(int(info.Brokers[0].Port)) ||
		info.Controller != info.Brokers[0].ID || info.Topics < 1 {
		t.Fatalf("cluster info --json: %+v (broker at %s)", info, testBroker)
	}
	var listed []struct{}
	decode(t, ok(t, "", "topic", "list", "--json"), &listed)
	if info.Topics != len(listed) {
		t.Fatalf("cluster info counts %d topics, topic list shows %d", info.Topics, len(listed))
	}
}

// every Kafka command, with arguments that would work against a broker.
var everyCommand = [][]string{
	{"topic", "create", "t"}, {"topic", "list"}, {"topic", "describe", "t"}, {"topic", "delete", "t"},
	{"topic", "alter-config", "t", "--set", "retention.ms=1"},
	{"produce", "t"}, {"consume", "t"},
	{"group", "list"}, {"group", "describe", "g"}, {"group", "seek", "g", "--to", "oldest"}, {"group", "delete", "g"},
	{"cluster", "info"}, {"broker", "decommission", "4"},
	{"partition", "elect"}, {"partition", "reassign", "t/0=1"}, {"partition", "reassignments"},
}

func TestBrokerDown(t *testing.T) {
	down := closedPort(t)
	for _, args := range everyCommand {
		r := cliEnv(t, Env{Stdin: strings.NewReader("x\n")}, nil, append(args, "--brokers", down, "--connect-timeout", "2s")...)
		if r.code != ExitUnreachable || !strings.Contains(r.stderr, "cannot reach a broker at "+down) ||
			!strings.Contains(r.stderr, "strand serve") || !strings.Contains(r.stderr, "--brokers") {
			t.Fatalf("strand %v against a closed port: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	// STRAND_BROKERS is the default for --brokers.
	r := cliEnv(t, Env{Getenv: func(k string) string {
		if k == "STRAND_BROKERS" {
			return down
		}
		return ""
	}}, nil, "topic", "list")
	if r.code != ExitUnreachable || !strings.Contains(r.stderr, down) {
		t.Fatalf("STRAND_BROKERS=%s: exit %d, stderr %q", down, r.code, r.stderr)
	}
}

// A broker that accepts connections and never answers must fail within
// --connect-timeout: the run has no other deadline, so without the
// timeout this test would hang.
func TestConnectTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	var stdout, stderr lockedBuffer
	code := Main([]string{"cluster", "info", "--brokers", l.Addr().String(), "--connect-timeout", "300ms"},
		Env{Context: context.Background(), Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	if code != ExitUnreachable || !strings.Contains(stderr.String(), "cannot reach a broker") {
		t.Fatalf("a silent broker: exit %d, stderr %q", code, stderr.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		want string
		args []string
	}{
		{"unknown command", []string{"frobnicate"}},
		{"unknown command", []string{"topic", "frobnicate"}},
		{"needs a subcommand", []string{"group"}},
		{"unknown flag", []string{"topic", "list", "--bogus"}},
		{"invalid argument", []string{"topic", "create", "t", "--partitions", "many"}},
		{"at least one TOPIC", []string{"topic", "create"}},
		{"one TOPIC", []string{"produce"}},
		{"one TOPIC", []string{"consume", "a", "b"}},
		{"no arguments", []string{"topic", "list", "extra"}},
		{"KEY=VALUE", []string{"topic", "create", "t", "--config", "retention.ms"}},
		{"--acks", []string{"produce", "t", "--acks", "2"}},
		{"cannot be used together", []string{"produce", "t", "--key", "k", "--key-separator", ":"}},
		{"KEY=VALUE", []string{"produce", "t", "-H", "novalue"}},
		{"--offset", []string{"consume", "t", "--offset", "middle"}},
		{"--timestamp", []string{"consume", "t", "--timestamp", "yesterday"}},
		{"--format", []string{"consume", "t", "--format", "xml"}},
		{"needs --template", []string{"consume", "t", "--format", "template"}},
		{"needs --format template", []string{"consume", "t", "--template", "{{.Value}}"}},
		{"--template", []string{"consume", "t", "--format", "template", "--template", "{{.Value"}},
		{"--count", []string{"consume", "t", "-n", "-1"}},
		{"--to", []string{"group", "seek", "g", "--to", "soon"}},
		{"invalid argument", []string{"cluster", "info", "--connect-timeout", "soon"}},
	} {
		// Usage errors are found before any connection: a closed port
		// proves it (exit 3 would mean the CLI tried to connect).
		r := cliEnv(t, Env{}, nil, append(c.args, "--brokers", closedPort(t))...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, c.want) {
			t.Fatalf("strand %v: exit %d, stderr %q; want exit %d and %q", c.args, r.code, r.stderr, ExitUsage, c.want)
		}
	}
}

func TestPassthroughAndCompletion(t *testing.T) {
	var got []string
	pass := Passthrough{Name: "serve", Run: func(args []string) int { got = args; return 7 }}
	var stdout, stderr lockedBuffer
	code := Main([]string{"serve", "--data-dir", "/x", "-h"}, Env{Stdout: &stdout, Stderr: &stderr}, pass)
	if code != 7 || strings.Join(got, " ") != "--data-dir /x -h" || stderr.String() != "" {
		t.Fatalf("serve passthrough: exit %d, args %q, stderr %q", code, got, stderr.String())
	}
	code = Main(nil, Env{Stdout: &stdout, Stderr: &stderr}, pass)
	if code != ExitUsage || !strings.Contains(stderr.String(), "Usage:") {
		t.Fatalf("bare strand: exit %d, stderr %q", code, stderr.String())
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := cliEnv(t, Env{}, nil, "completion", sh)
		if r.code != 0 || !strings.Contains(r.stdout, "strand") {
			t.Fatalf("completion %s: exit %d, %d bytes", sh, r.code, len(r.stdout))
		}
	}
	r := cliEnv(t, Env{}, nil, "__complete", "topic", "")
	if r.code != 0 || !strings.Contains(r.stdout, "alter-config") {
		t.Fatalf("completing `strand topic `: %q", r.stdout)
	}
}

func TestClassify(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, c := range []struct {
		err  error
		code int
	}{
		{fmt.Errorf("listing topics: %w", dial), ExitUnreachable},
		{kerr.UnknownTopicOrPartition, ExitFailed},
		{errors.New("something else"), ExitFailed},
	} {
		var ee *exitError
		if !errors.As(classify(c.err), &ee) || ee.code != c.code {
			t.Fatalf("classify(%v) = %v, want exit %d", c.err, classify(c.err), c.code)
		}
	}
}
