package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Consumer groups end to end (issue #4): franz-go group members with the
// client's default settings (cooperative-sticky balancing, autocommit),
// except a session timeout at the broker's minimum so that a dead member
// is noticed quickly.

// groupSession is the members' session timeout: group.min.session.timeout.ms.
const groupSession = 6 * time.Second

// defaultClient is a kgo client with franz-go's defaults (idempotent
// producer, acks=all, snappy), unlike newClient; it is closed at cleanup.
func defaultClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// owners is the assignment of one topic's partitions as the group members'
// own callbacks report it. Every change wakes the waiters.
type owners struct {
	mu      sync.Mutex
	owned   map[string]map[int32]bool // member -> partitions
	changed chan struct{}             // closed and replaced on every change
}

func newOwners() *owners {
	return &owners{owned: map[string]map[int32]bool{}, changed: make(chan struct{})}
}

func (o *owners) update(member string, ps []int32, assigned bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := o.owned[member]
	if m == nil {
		m = map[int32]bool{}
		o.owned[member] = m
	}
	for _, p := range ps {
		if assigned {
			m[p] = true
		} else {
			delete(m, p)
		}
	}
	close(o.changed)
	o.changed = make(chan struct{})
}

func (o *owners) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	names := make([]string, 0, len(o.owned))
	for n := range o.owned {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		var ps []int32
		for p := range o.owned[n] {
			ps = append(ps, p)
		}
		slices.Sort(ps)
		fmt.Fprintf(&b, "%s=%v ", n, ps)
	}
	return b.String()
}

// sharedBy reports whether partitions 0..parts-1 are each owned by exactly
// one of members, every one of members owning at least one (when all is
// set), and whether none of idle owns anything.
func (o *owners) sharedBy(parts int32, members, idle []string, all bool) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range idle {
		if len(o.owned[n]) > 0 {
			return false
		}
	}
	for p := range parts {
		n := 0
		for _, m := range members {
			if o.owned[m][p] {
				n++
			}
		}
		if n != 1 {
			return false
		}
	}
	for _, m := range members {
		if all && len(o.owned[m]) == 0 {
			return false
		}
	}
	return true
}

// waitFor waits until cond holds, woken by every change, and returns when it
// first held; it fails the test after d.
func (o *owners) waitFor(t testing.TB, what string, d time.Duration, cond func() bool) time.Time {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		o.mu.Lock()
		ch := o.changed
		o.mu.Unlock()
		if cond() {
			return time.Now()
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for %s; assignment now: %s", d, what, o)
		}
	}
}

// member is one in-process group member consuming in its own goroutine.
type member struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	seen   map[int32][]int64 // partition -> offsets in the order consumed
	bad    error
	notify chan<- struct{} // nil, or told (without blocking) after each poll
}

// memberOpts are what every member of these tests sets beyond kgo's
// defaults: the group, the topic and the short session timeout.
func memberOpts(group, topic string) []kgo.Opt {
	return []kgo.Opt{kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.SessionTimeout(groupSession)}
}

// startMember joins group and consumes topic until stopped. With o set, its
// assignment callbacks report to o (which replaces kgo's default
// commit-on-revoke: only for tests that do not look at commits).
func startMember(t testing.TB, addr, group, topic, name string, o *owners, notify chan<- struct{}, opts ...kgo.Opt) *member {
	t.Helper()
	m := &member{name: name, seen: map[int32][]int64{}, done: make(chan struct{}), notify: notify}
	all := memberOpts(group, topic)
	if o != nil {
		report := func(assigned bool) func(context.Context, *kgo.Client, map[string][]int32) {
			return func(_ context.Context, _ *kgo.Client, a map[string][]int32) { o.update(name, a[topic], assigned) }
		}
		all = append(all, kgo.OnPartitionsAssigned(report(true)), kgo.OnPartitionsRevoked(report(false)), kgo.OnPartitionsLost(report(false)))
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(addr)}, all...), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go m.consume(ctx)
	t.Cleanup(m.stop)
	return m
}

func (m *member) consume(ctx context.Context) {
	defer close(m.done)
	for {
		fs := m.cl.PollFetches(ctx)
		// Whatever a poll returned counts as delivered (autocommit may
		// commit it), so it is recorded even when the poll was cut short.
		m.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			m.seen[r.Partition] = append(m.seen[r.Partition], r.Offset)
			if m.bad == nil && (!bytes.Equal(r.Key, recKey(r.Partition, r.Offset)) || !bytes.Equal(r.Value, recValue(r.Partition, r.Offset))) {
				m.bad = fmt.Errorf("%s: partition %d offset %d holds a record that was not produced there", m.name, r.Partition, r.Offset)
			}
		})
		m.mu.Unlock()
		if m.notify != nil {
			select {
			case m.notify <- struct{}{}:
			default:
			}
		}
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
	}
}

// stop ends the poll loop and closes the client, which leaves the group
// (committing, with autocommit, everything polled before the last poll).
func (m *member) stop() {
	m.cancel()
	<-m.done
	m.cl.Close()
}

func (m *member) err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bad
}

// produceNumbered produces records from..to-1 of every partition
// (recKey/recValue) with a default (idempotent) client, in batches of at
// most chunk records per partition, and checks that record seq is
// acknowledged at offset seq.
func produceNumbered(t testing.TB, cl *kgo.Client, topic string, parts int32, from, to int64, chunk int64) {
	t.Helper()
	ctx := ctxFor(t, 2*time.Minute)
	for lo := from; lo < to; lo += chunk {
		var recs []*kgo.Record
		for seq := lo; seq < min(lo+chunk, to); seq++ {
			for p := range parts {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: recKey(p, seq), Value: recValue(p, seq)})
			}
		}
		for _, r := range cl.ProduceSync(ctx, recs...) {
			if r.Err != nil {
				t.Fatalf("produce %s/%d: %v", topic, r.Record.Partition, r.Err)
			}
			if want := int64(bytesSeq(r.Record.Key)); r.Record.Offset != want {
				t.Fatalf("%s/%d: record %d acknowledged at offset %d", topic, r.Record.Partition, want, r.Record.Offset)
			}
		}
	}
}

// bytesSeq is the sequence number in a recKey.
func bytesSeq(key []byte) uint64 { return binary.BigEndian.Uint64(key[4:]) }

// manualProducer is a default kgo client that writes to the partition the
// record names.
func manualProducer(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	return defaultClient(t, addr, append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
}

// TestGroupMembersShareAndLeave: three members split an 8-partition topic
// (each partition to exactly one member, every member some); when one
// leaves with LeaveGroup, the other two take over its partitions, sooner
// than a session timeout (the leave, not an expiry, triggers it).
func TestGroupMembersShareAndLeave(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	const topic, group, parts = "shared", "sharers", 8
	createTopic(t, newClient(t, n.Addr()), topic, parts)
	produceNumbered(t, manualProducer(t, n.Addr()), topic, parts, 0, 50, 50)

	o := newOwners()
	names := []string{"a", "b", "c"}
	ms := map[string]*member{}
	for _, name := range names {
		ms[name] = startMember(t, n.Addr(), group, topic, name, o, nil)
	}
	o.waitFor(t, "three members sharing the topic", 60*time.Second, func() bool { return o.sharedBy(parts, names, nil, true) })
	t.Logf("shared: %s", o)

	// c leaves cleanly; its poll loop stops first (leaving does not wake a poll).
	c := ms["c"]
	c.cancel()
	<-c.done
	left := time.Now()
	if err := c.cl.LeaveGroupContext(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("LeaveGroup: %v", err)
	}
	at := o.waitFor(t, "a and b to take over c's partitions", 60*time.Second, func() bool {
		return o.sharedBy(parts, []string{"a", "b"}, []string{"c"}, true)
	})
	took := at.Sub(left)
	t.Logf("after c left (%v): %s", took.Round(time.Millisecond), o)
	if took >= groupSession {
		t.Fatalf("reassignment after a clean leave took %v, not less than the session timeout %v: the leave was not acted on", took, groupSession)
	}
	checkMembers(t, n.Addr(), group, 2)
	for _, m := range ms {
		if err := m.err(); err != nil {
			t.Fatal(err)
		}
	}
}

// The SIGKILLed member runs in a child process: this test binary re-run
// with -test.run=^TestGroupMemberChild$ and the member's settings in
// memberEnv. It reports its assignment on stdout, one line per change:
// "member assigned 1 4 7" or "member revoked 4".
const memberEnv = "STRAND_E2E_GROUP_MEMBER" // addr,group,topic

func TestGroupMemberChild(t *testing.T) {
	spec := os.Getenv(memberEnv)
	if spec == "" {
		t.Skip("only runs as the child process of TestGroupSIGKILLedMemberReassigned")
	}
	f := strings.Split(spec, ",")
	if len(f) != 3 {
		t.Fatalf("%s=%q: want addr,group,topic", memberEnv, spec)
	}
	addr, group, topic := f[0], f[1], f[2]
	// The parent holds our stdin open: when it goes, so do we.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	var mu sync.Mutex
	report := func(what string) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			line := "member " + what
			for _, p := range a[topic] {
				line += " " + strconv.Itoa(int(p))
			}
			fmt.Fprintln(os.Stdout, line)
		}
	}
	opts := append([]kgo.Opt{kgo.SeedBrokers(addr)}, memberOpts(group, topic)...)
	opts = append(opts, kgo.OnPartitionsAssigned(report("assigned")), kgo.OnPartitionsRevoked(report("revoked")), kgo.OnPartitionsLost(report("revoked")))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for {
		if fs := cl.PollFetches(context.Background()); fs.IsClientClosed() {
			return
		}
	}
}

// checkMembers checks that the broker describes group as Stable with n
// members, each assigned a share of the topic.
func checkMembers(t testing.TB, addr, group string, n int) {
	t.Helper()
	d := describeGroup(t, newClient(t, addr), group)
	if d.ErrorCode != 0 || d.State != "Stable" || len(d.Members) != n {
		t.Fatalf("DescribeGroups %s: error %d state %q with %d members, want Stable with %d", group, d.ErrorCode, d.State, len(d.Members), n)
	}
	for _, m := range d.Members {
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(m.MemberAssignment); err != nil || len(a.Topics) != 1 || len(a.Topics[0].Partitions) == 0 {
			t.Fatalf("DescribeGroups %s: member %s has assignment %+v (%v)", group, m.MemberID, a.Topics, err)
		}
	}
}

// startChildMember runs TestGroupMemberChild in a new process and feeds its
// assignment reports to o as member name.
func startChildMember(t *testing.T, addr, group, topic, name string, o *owners) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestGroupMemberChild$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), memberEnv+"="+strings.Join([]string{addr, group, topic}, ","), "TMPDIR="+t.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := newLogBuf()
	logs.dumpOnFailure(t, "child member "+name)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logs, line)
			f := strings.Fields(line)
			if len(f) < 2 || f[0] != "member" {
				continue
			}
			var ps []int32
			for _, s := range f[2:] {
				p, _ := strconv.Atoi(s)
				ps = append(ps, int32(p))
			}
			o.update(name, ps, f[1] == "assigned")
		}
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		<-exited
	})
	return cmd
}

// TestGroupSIGKILLedMemberReassigned: one of three members is a separate
// process; SIGKILL gives it no chance to leave, so the coordinator must
// notice its session lapse and hand its partitions to the others, within
// the session timeout plus a rebalance (a heartbeat interval, kgo's default
// 3 s, for the survivors to hear of it, and the join and sync).
func TestGroupSIGKILLedMemberReassigned(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	const topic, group, parts = "killed", "survivors", 8
	createTopic(t, newClient(t, n.Addr()), topic, parts)
	produceNumbered(t, manualProducer(t, n.Addr()), topic, parts, 0, 50, 50)

	o := newOwners()
	a := startMember(t, n.Addr(), group, topic, "a", o, nil)
	b := startMember(t, n.Addr(), group, topic, "b", o, nil)
	child := startChildMember(t, n.Addr(), group, topic, "child", o)
	o.waitFor(t, "two members and the child process sharing the topic", 60*time.Second, func() bool {
		return o.sharedBy(parts, []string{"a", "b", "child"}, nil, true)
	})
	t.Logf("shared: %s", o)

	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	const slack = 6 * time.Second // heartbeat interval 3 s + the rebalance, with -race on 2 cores
	at := o.waitFor(t, "a and b to take over the killed member's partitions", 60*time.Second, func() bool {
		return o.sharedBy(parts, []string{"a", "b"}, nil, true)
	})
	took := at.Sub(killed)
	t.Logf("after SIGKILL (%v): %s", took.Round(time.Millisecond), o)
	if took > groupSession+slack {
		t.Fatalf("the killed member's partitions were reassigned %v after SIGKILL, want within the session timeout %v + %v", took, groupSession, slack)
	}
	checkMembers(t, n.Addr(), group, 2)
	for _, m := range []*member{a, b} {
		if err := m.err(); err != nil {
			t.Fatal(err)
		}
	}
}

// committedOffsets asks the broker (OffsetFetch for the whole group) for
// group's committed offsets of topic: -1 where nothing is committed.
func committedOffsets(t testing.TB, cl *kgo.Client, group, topic string, parts int32) []int64 {
	t.Helper()
	out := make([]int64, parts)
	for i := range out {
		out[i] = -1
	}
	resp := offsetFetch(t, cl, group)
	for _, rt := range resp.Topics {
		if rt.Topic != topic {
			continue
		}
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("OffsetFetch %s %s/%d: %v", group, topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
			}
			if rp.Partition < 0 || rp.Partition >= parts {
				t.Fatalf("OffsetFetch %s: partition %d of %s does not exist", group, rp.Partition, topic)
			}
			out[rp.Partition] = rp.Offset
		}
	}
	return out
}

// offsetFetch fetches every committed offset of group (OffsetFetch v5,
// topics null), retrying while the coordinator is loading after a restart.
func offsetFetch(t testing.TB, cl *kgo.Client, group string) *kmsg.OffsetFetchResponse {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	for {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 5
		req.Group = group
		resp, err := req.RequestWith(ctx, cl)
		code := int16(0)
		if err == nil {
			code = resp.ErrorCode
			err = kerr.ErrorForCode(code)
		}
		switch {
		case err == nil:
			return resp
		case kerr.IsRetriable(err) && ctx.Err() == nil:
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond): // retry back-off
			}
		default:
			t.Fatalf("OffsetFetch %s: %v", group, err)
		}
	}
}

// TestGroupRestartResumesFromCommits: a three-member group with default
// autocommit consumes about half of a topic and stops; more is produced;
// the whole group restarts. It must resume each partition exactly at the
// offset the broker has committed, never past what was consumed, and
// together the two runs must see every record (duplicates allowed, skips
// not).
func TestGroupRestartResumesFromCommits(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	groupRestart(t, n.Addr(), nil)
}

// TestGroupResumesAfterBrokerSIGKILL is the same with bin/strand SIGKILLed
// and restarted while the group is stopped: the members' commits must come
// back from the offsets log.
func TestGroupResumesAfterBrokerSIGKILL(t *testing.T) {
	bp := startProc(t, testDataDir(t))
	groupRestart(t, bp.addr, func() {
		bp.kill()
		bp.start()
	})
}

// groupRestart runs the group restart scenario against the broker at addr,
// calling between (if set) while the group is stopped.
func groupRestart(t *testing.T, addr string, between func()) {
	const topic, group, parts = "resume", "resumers", 8
	const first, second = 400, 600 // records per partition before and after the stop
	createTopic(t, newClient(t, addr), topic, parts)
	prod := manualProducer(t, addr)
	produceNumbered(t, prod, topic, parts, 0, first, 20) // batches of 20, so fetches stay small

	small := kgo.FetchMaxPartitionBytes(2 << 10) // many polls, so the stop lands mid-topic
	// run starts three members, lets them consume until enough (given
	// every offset consumed by the group so far, per partition) says so,
	// stops them all at once and returns what they consumed.
	run := func(enough func(map[int32][]int64) bool) map[int32][]int64 {
		t.Helper()
		progress := make(chan struct{}, 1)
		var ms []*member
		for i := range 3 {
			ms = append(ms, startMember(t, addr, group, topic, fmt.Sprint("m", i), nil, progress, small))
		}
		union := func() map[int32][]int64 {
			all := map[int32][]int64{}
			for _, m := range ms {
				m.mu.Lock()
				for p, offs := range m.seen {
					all[p] = append(all[p], offs...)
				}
				m.mu.Unlock()
			}
			return all
		}
		timeout := time.After(90 * time.Second)
		for !enough(union()) {
			select {
			case <-progress:
			case <-timeout:
				t.Fatalf("the group consumed only %d distinct records in 90s", distinctCount(union()))
			}
		}
		var wg sync.WaitGroup
		for _, m := range ms {
			wg.Add(1)
			go func() { defer wg.Done(); m.stop() }()
		}
		wg.Wait()
		for _, m := range ms {
			if err := m.err(); err != nil {
				t.Fatal(err)
			}
		}
		return union()
	}

	before := run(func(seen map[int32][]int64) bool { return distinctCount(seen) >= parts*first/2 })
	admin := newClient(t, addr)
	committed := committedOffsets(t, admin, group, topic, parts)
	if between != nil {
		between()
		if again := committedOffsets(t, newClient(t, addr), group, topic, parts); !slices.Equal(again, committed) {
			t.Fatalf("committed offsets were %v, and %v after the broker restarted", committed, again)
		}
	}
	var total int64
	for p := range int32(parts) {
		reached := int64(0) // one past the highest offset consumed
		for _, o := range before[p] {
			reached = max(reached, o+1)
		}
		if committed[p] > reached {
			t.Fatalf("partition %d: committed offset %d is past every record consumed (up to %d): records would be skipped", p, committed[p], reached-1)
		}
		total += max(committed[p], 0)
	}
	t.Logf("first run consumed %d distinct records; committed %v", distinctCount(before), committed)
	if total == 0 {
		t.Fatal("the first run committed nothing: autocommit on leave did not reach the broker")
	}

	produceNumbered(t, prod, topic, parts, first, second, 20)
	after := run(func(seen map[int32][]int64) bool {
		for p, offs := range before {
			seen[p] = append(seen[p], offs...)
		}
		return distinctCount(seen) == parts*second
	})
	for p := range int32(parts) {
		start := max(committed[p], 0)
		if len(after[p]) == 0 {
			if start < second {
				t.Fatalf("partition %d: the restarted group consumed nothing, want from offset %d", p, start)
			}
			continue
		}
		if lo := slices.Min(after[p]); lo != start {
			t.Fatalf("partition %d: the restarted group started at offset %d, want the committed offset %d", p, lo, start)
		}
		have := make([]bool, second)
		for _, o := range append(append([]int64(nil), before[p]...), after[p]...) {
			have[o] = true
		}
		if i := slices.Index(have, false); i >= 0 {
			t.Fatalf("partition %d: record %d was never consumed (skipped)", p, i)
		}
	}
	dups := int64(len(flatten(before))+len(flatten(after))) - parts*second
	t.Logf("second run: every record of %d consumed; %d duplicate deliveries in all", parts*second, dups)
}

func distinctCount(m map[int32][]int64) int {
	n := 0
	for _, offs := range m {
		seen := map[int64]bool{}
		for _, o := range offs {
			seen[o] = true
		}
		n += len(seen)
	}
	return n
}

func flatten(m map[int32][]int64) []int64 {
	var out []int64
	for _, offs := range m {
		out = append(out, offs...)
	}
	return out
}

// groupRequest sends a group admin request through kgo (which finds the
// coordinator), failing the test on a transport error.
func groupRequest[R kmsg.Response](t testing.TB, cl *kgo.Client, req kmsg.Request) R {
	t.Helper()
	resp, err := cl.Request(ctxFor(t, 30*time.Second), req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp.(R)
}

func describeGroup(t testing.TB, cl *kgo.Client, group string) kmsg.DescribeGroupsResponseGroup {
	t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	resp := groupRequest[*kmsg.DescribeGroupsResponse](t, cl, req)
	if len(resp.Groups) != 1 || resp.Groups[0].Group != group {
		t.Fatalf("DescribeGroups %s: answered %+v", group, resp.Groups)
	}
	return resp.Groups[0]
}

// listGroups returns group -> state from ListGroups with an optional state
// filter.
func listGroups(t testing.TB, cl *kgo.Client, states ...string) map[string]string {
	t.Helper()
	req := kmsg.NewPtrListGroupsRequest()
	req.StatesFilter = states
	resp := groupRequest[*kmsg.ListGroupsResponse](t, cl, req)
	if resp.ErrorCode != 0 {
		t.Fatalf("ListGroups: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	out := map[string]string{}
	for _, g := range resp.Groups {
		if g.ProtocolType != "consumer" {
			t.Fatalf("ListGroups: group %s has protocol type %q, want consumer", g.Group, g.ProtocolType)
		}
		out[g.Group] = g.GroupState
	}
	return out
}

func deleteGroups(t testing.TB, cl *kgo.Client, groups ...string) []int16 {
	t.Helper()
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Groups = groups
	resp := groupRequest[*kmsg.DeleteGroupsResponse](t, cl, req)
	codes := map[string]int16{}
	for _, g := range resp.Groups {
		codes[g.Group] = g.ErrorCode
	}
	out := make([]int16, len(groups))
	for i, g := range groups {
		c, ok := codes[g]
		if !ok {
			t.Fatalf("DeleteGroups: no answer for %s in %+v", g, resp.Groups)
		}
		out[i] = c
	}
	return out
}

// offsetDelete deletes the committed offsets of partitions of topic and
// returns the top-level error code and the partitions' codes.
func offsetDelete(t testing.TB, cl *kgo.Client, group, topic string, partitions ...int32) (int16, map[int32]int16) {
	t.Helper()
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = group
	rt := kmsg.NewOffsetDeleteRequestTopic()
	rt.Topic = topic
	for _, p := range partitions {
		rp := kmsg.NewOffsetDeleteRequestTopicPartition()
		rp.Partition = p
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := groupRequest[*kmsg.OffsetDeleteResponse](t, cl, req)
	codes := map[int32]int16{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			codes[p.Partition] = p.ErrorCode
		}
	}
	return resp.ErrorCode, codes
}

// TestGroupAdminRequests: DescribeGroups, ListGroups, DeleteGroups and
// OffsetDelete through kgo report a live group, then an empty one, then a
// deleted one, with Kafka's error codes: NON_EMPTY_GROUP (68) for deleting
// a group with members, GROUP_ID_NOT_FOUND (69) for an unknown group,
// GROUP_SUBSCRIBED_TO_TOPIC (86) for deleting offsets a member consumes.
func TestGroupAdminRequests(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	const topic, group, parts, records = "admin-groups", "described", 3, 10
	const unknown = "no-such-group"
	admin := newClient(t, n.Addr())
	createTopic(t, admin, topic, parts)
	produceNumbered(t, manualProducer(t, n.Addr()), topic, parts, 0, records, records)

	o := newOwners()
	progress := make(chan struct{}, 1)
	m := startMember(t, n.Addr(), group, topic, "solo", o, progress)
	o.waitFor(t, "the member to own the topic", 60*time.Second, func() bool { return o.sharedBy(parts, []string{"solo"}, nil, true) })
	timeout := time.After(60 * time.Second)
	for func() bool { m.mu.Lock(); defer m.mu.Unlock(); return len(flatten(m.seen)) < parts*records }() {
		select {
		case <-progress:
		case <-timeout:
			t.Fatal("the member did not consume the topic within 60s")
		}
	}
	if err := m.cl.CommitUncommittedOffsets(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("commit: %v", err)
	}

	// A live group.
	d := describeGroup(t, admin, group)
	if d.ErrorCode != 0 || d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "cooperative-sticky" || len(d.Members) != 1 {
		t.Fatalf("DescribeGroups of the live group: error %d state %q protocol %q/%q, %d members; want Stable consumer/cooperative-sticky with 1 member",
			d.ErrorCode, d.State, d.ProtocolType, d.Protocol, len(d.Members))
	}
	var assigned kmsg.ConsumerMemberAssignment
	if err := assigned.ReadFrom(d.Members[0].MemberAssignment); err != nil {
		t.Fatalf("DescribeGroups: member assignment does not decode: %v", err)
	}
	if len(assigned.Topics) != 1 || assigned.Topics[0].Topic != topic || !slices.Equal(slices.Sorted(slices.Values(assigned.Topics[0].Partitions)), []int32{0, 1, 2}) {
		t.Fatalf("DescribeGroups: member assignment %+v, want all of %s", assigned.Topics, topic)
	}
	if d.Members[0].ClientID != "kgo" || d.Members[0].MemberID == "" {
		t.Fatalf("DescribeGroups: member id %q client id %q", d.Members[0].MemberID, d.Members[0].ClientID)
	}
	if d := describeGroup(t, admin, unknown); d.ErrorCode != 0 || d.State != "Dead" || len(d.Members) != 0 {
		t.Fatalf("DescribeGroups of an unknown group: error %d state %q, want 0 and Dead", d.ErrorCode, d.State)
	}
	if gs := listGroups(t, admin); gs[group] != "Stable" || len(gs) != 1 {
		t.Fatalf("ListGroups: %v, want only %s Stable", gs, group)
	}
	if gs := listGroups(t, admin, "Empty"); len(gs) != 0 {
		t.Fatalf("ListGroups filtered to Empty: %v, want none", gs)
	}
	if codes := deleteGroups(t, admin, group, unknown); !slices.Equal(codes, []int16{68, 69}) {
		t.Fatalf("DeleteGroups(live, unknown) answered %v, want [68 NON_EMPTY_GROUP, 69 GROUP_ID_NOT_FOUND]", codes)
	}
	if top, codes := offsetDelete(t, admin, group, topic, 0); top != 0 || codes[0] != 86 {
		t.Fatalf("OffsetDelete on a live group: error %d, partition %v; want partition error 86 GROUP_SUBSCRIBED_TO_TOPIC", top, codes)
	}

	// The member leaves: an empty group that keeps its offsets.
	m.stop()
	if d := describeGroup(t, admin, group); d.ErrorCode != 0 || d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("DescribeGroups after the member left: error %d state %q %d members, want Empty with none", d.ErrorCode, d.State, len(d.Members))
	}
	if gs := listGroups(t, admin, "Empty"); gs[group] != "Empty" {
		t.Fatalf("ListGroups filtered to Empty: %v, want %s", gs, group)
	}
	if got := committedOffsets(t, admin, group, topic, parts); !slices.Equal(got, []int64{records, records, records}) {
		t.Fatalf("committed offsets %v, want %d for each partition", got, records)
	}
	if top, codes := offsetDelete(t, admin, group, topic, 0); top != 0 || codes[0] != 0 {
		t.Fatalf("OffsetDelete on an empty group: error %d, partition %v; want success", top, codes)
	}
	if got := committedOffsets(t, admin, group, topic, parts); !slices.Equal(got, []int64{-1, records, records}) {
		t.Fatalf("committed offsets after OffsetDelete of partition 0: %v, want [-1 %d %d]", got, records, records)
	}

	// Deleted.
	if codes := deleteGroups(t, admin, group); codes[0] != 0 {
		t.Fatalf("DeleteGroups of the empty group: %v", kerr.ErrorForCode(codes[0]))
	}
	if d := describeGroup(t, admin, group); d.State != "Dead" {
		t.Fatalf("DescribeGroups after DeleteGroups: state %q, want Dead", d.State)
	}
	if gs := listGroups(t, admin); len(gs) != 0 {
		t.Fatalf("ListGroups after DeleteGroups: %v, want none", gs)
	}
	if got := committedOffsets(t, admin, group, topic, parts); !slices.Equal(got, []int64{-1, -1, -1}) {
		t.Fatalf("committed offsets after DeleteGroups: %v, want none", got)
	}
	if codes := deleteGroups(t, admin, group); codes[0] != 69 {
		t.Fatalf("DeleteGroups of a deleted group: %d, want 69", codes[0])
	}
	if top, _ := offsetDelete(t, admin, unknown, topic, 0); top != 69 {
		t.Fatalf("OffsetDelete on an unknown group: %d, want 69", top)
	}
}

// kcatGroupRun consumes topic as a member of group with kcat -G until the
// end of every assigned partition and returns partition -> (offset, line)
// in the order read. kcat commits its position on the way out.
func kcatGroupRun(t testing.TB, kcat, addr, group, topic string) map[int32][]kcatLine {
	t.Helper()
	out := runKcat(t, kcat, 2*time.Minute, "-b", addr, "-G", group, "-X", "auto.offset.reset=earliest", "-e", "-q", "-f", "%p %o %s\n", topic)
	got := map[int32][]kcatLine{}
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if l == "" {
			continue
		}
		f := strings.SplitN(l, " ", 3)
		if len(f) != 3 {
			t.Fatalf("kcat -G: unparseable line %q", l)
		}
		p, err1 := strconv.Atoi(f[0])
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("kcat -G: unparseable line %q", l)
		}
		got[int32(p)] = append(got[int32(p)], kcatLine{o, f[2]})
	}
	return got
}

type kcatLine struct {
	offset int64
	text   string
}

// TestKcatGroupResumesAfterCommits: kcat -G (librdkafka's group consumer)
// reads a topic to the end and commits on exit; the broker holds exactly
// the end offsets; a second run after more lines were produced sees
// exactly the new lines, each partition from its committed offset on.
func TestKcatGroupResumesAfterCommits(t *testing.T) {
	kcat := kcatPath(t)
	n := startNode(t, testDataDir(t), nil)
	addr := n.Addr()
	const topic, group, parts = "kcat-group", "kcat-readers", 3
	admin := newClient(t, addr)
	createTopic(t, admin, topic, parts)

	produce := func(prefix string, count int) map[string]bool {
		var b bytes.Buffer
		want := map[string]bool{}
		for i := range count {
			l := fmt.Sprintf("%s line %04d", prefix, i)
			want[l] = true
			fmt.Fprintf(&b, "k%d:%s\n", i, l) // keyed, to spread the lines over the partitions
		}
		file := filepath.Join(t.TempDir(), prefix+".txt")
		if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		runKcat(t, kcat, time.Minute, "-b", addr, "-P", "-t", topic, "-K:", "-l", "-X", "acks=all", file)
		return want
	}
	// check verifies one run: exactly the lines in want, each once, every
	// partition read densely from its start offset.
	check := func(run string, got map[int32][]kcatLine, want map[string]bool, start []int64) {
		t.Helper()
		seen := map[string]bool{}
		for p, ls := range got {
			if p < 0 || p >= parts {
				t.Fatalf("%s: partition %d", run, p)
			}
			for i, l := range ls {
				if l.offset != start[p]+int64(i) {
					t.Fatalf("%s: partition %d: line %d at offset %d, want offset %d", run, p, i, l.offset, start[p]+int64(i))
				}
				if !want[l.text] || seen[l.text] {
					t.Fatalf("%s: partition %d offset %d: unexpected or repeated line %q", run, p, l.offset, l.text)
				}
				seen[l.text] = true
			}
		}
		if len(seen) != len(want) {
			t.Fatalf("%s: read %d of the %d lines", run, len(seen), len(want))
		}
	}

	// committedAtEnd checks that the group committed each partition's end
	// offset (librdkafka commits nothing for a partition it read nothing
	// from, so an empty partition may have no commit) and returns where
	// the next run starts.
	committedAtEnd := func(run string) []int64 {
		t.Helper()
		ends := endOffsets(t, admin, topic, parts)
		got := committedOffsets(t, admin, group, topic, parts)
		for p := range parts {
			if got[p] != ends[p] && !(ends[p] == 0 && got[p] == -1) {
				t.Fatalf("after the %s run the group committed %v, want the end offsets %v", run, got, ends)
			}
		}
		return ends
	}
	first := produce("first", 300)
	check("first kcat -G run", kcatGroupRun(t, kcat, addr, group, topic), first, make([]int64, parts))
	resume := committedAtEnd("first")
	second := produce("second", 200)
	check("second kcat -G run", kcatGroupRun(t, kcat, addr, group, topic), second, resume)
	committedAtEnd("second")
}
