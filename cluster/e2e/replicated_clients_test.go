package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
)

// Replication probed through the client libraries users run, each with
// its own retry, metadata-refresh and idempotence code: sarama, kafka-go
// and librdkafka (kcat). Each test creates a topic of replication factor
// 3 and min.insync.replicas 2 through that library's admin API, produces
// numbered records with acks=all while the broker leading the most
// partitions is SIGKILLed and restarted, and reads every partition back
// with the same library. franz-go is covered by replicated_basic_test.go.

const (
	clientParts = 6
	// clientStep is how many records must be acknowledged before the
	// kill, between the kill and the restart, and after the restart: the
	// producer is live through every phase.
	clientStep = 300
)

// mostLeader is the broker that leads the most partitions.
func mostLeader(leaders []int32) int32 {
	n := map[int32]int{}
	best := int32(-1)
	for _, l := range leaders {
		n[l]++
		if l >= 0 && (best < 0 || n[l] > n[best]) {
			best = l
		}
	}
	return best
}

// killAndRestart SIGKILLs victim once clientStep records were acknowledged
// (progress reports how many, or why the producer stopped), waits for
// clientStep more (so the producer got past the failover), then for
// down (the library's view of the cluster without victim) to hold,
// progressOf is killAndRestart's progress for a producer goroutine that
// counts its acknowledgements in count and stores its first error in err.
func progressOf(count *atomic.Int64, err *atomic.Pointer[error]) func() (int64, error) {
	return func() (int64, error) {
		if e := err.Load(); e != nil {
			return count.Load(), *e
		}
		return count.Load(), nil
	}
}

// restarts it and waits for clientStep more.
func killAndRestart(t *testing.T, c *testCluster, victim int32, progress func() (int64, error), down func() error) {
	t.Helper()
	at := func(what string, n int64) {
		t.Helper()
		waitUntil(t, 30*time.Second, what, func() error {
			got, err := progress()
			if err != nil {
				return fmt.Errorf("the producer stopped after %d acknowledged records: %w", got, err)
			}
			if got < n {
				return fmt.Errorf("%d of %d acknowledged", got, n)
			}
			return nil
		})
	}
	at("records acknowledged before the kill", clientStep)
	n0, _ := progress()
	c.procs[victim].kill()
	killed := time.Now()
	at(fmt.Sprintf("records acknowledged after broker %d was SIGKILLed", victim), n0+clientStep)
	t.Logf("broker %d SIGKILLed at %d acknowledged records; %d more within %v", victim, n0, clientStep, time.Since(killed).Round(time.Millisecond))
	waitUntil(t, 20*time.Second, fmt.Sprintf("broker %d out of every in-sync set and leading nothing", victim), down)
	c.procs[victim].start()
	n1, _ := progress()
	at(fmt.Sprintf("records acknowledged after broker %d restarted", victim), n1+clientStep)
}

// readBack is what one partition holds, in offset order: each record's
// number and offset.
type readBack struct {
	nums, offs []int64
}

// checkReadBack checks one partition: every acknowledged number (acked
// maps it to the offset the producer was told, or -1 when the library
// does not say) is present at that offset, nothing is there that was not
// sent, and, when the producer was idempotent, each number is there once
// and in the order sent. A producer without idempotence may write a
// retried record twice (at least once, as in Kafka): then only the first
// copies must be in order.
func checkReadBack(t *testing.T, p int32, rb readBack, acked map[int64]int64, sent int64, idempotent bool) {
	t.Helper()
	seen := map[int64]int64{}
	last, dups := int64(-1), 0
	for i, n := range rb.nums {
		if n < 0 || n >= sent {
			t.Fatalf("partition %d offset %d holds record %d, never sent (sent 0..%d)", p, rb.offs[i], n, sent-1)
		}
		if o, ok := seen[n]; ok {
			if idempotent {
				t.Fatalf("partition %d holds record %d twice, at offsets %d and %d, from an idempotent producer", p, n, o, rb.offs[i])
			}
			dups++
			continue
		}
		seen[n] = rb.offs[i]
		if n <= last {
			t.Fatalf("partition %d offset %d holds record %d after record %d: out of order", p, rb.offs[i], n, last)
		}
		last = n
	}
	for n, off := range acked {
		got, ok := seen[n]
		if !ok {
			t.Fatalf("partition %d lost acknowledged record %d (acknowledged at offset %d); it holds %d records", p, n, off, len(rb.nums))
		}
		if off >= 0 && got != off {
			t.Fatalf("partition %d: record %d acknowledged at offset %d, read at offset %d", p, n, off, got)
		}
	}
	if dups > 0 {
		t.Logf("partition %d: %d duplicates from retries of a producer without idempotence", p, dups)
	}
}

// parseNum reads the record number out of "<partition or key>-<number>".
func parseNum(v []byte) int64 {
	i := bytes.LastIndexByte(v, '-')
	n, err := strconv.ParseInt(string(v[i+1:]), 10, 64)
	if i < 0 || err != nil {
		return -1
	}
	return n
}

// TestSaramaReplicated: sarama's idempotent SyncProducer (acks=all) keeps
// exactly-once through a leader's SIGKILL and restart; sarama's admin
// creates the topic and sees three replicas and the in-sync sets shrink
// and grow back; sarama's consumer reads every acknowledged record once,
// at the offset it was acknowledged at.
func TestSaramaReplicated(t *testing.T) {
	c := startCluster(t, 3, "--replica-lag-time-max", "3s")
	const topic = "sarama-rep"
	cfg := saramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 100
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	client, err := sarama.NewClient(c.seeds(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	two := "2"
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: clientParts, ReplicationFactor: 3,
		ConfigEntries: map[string]*string{"min.insync.replicas": &two}}, false); err != nil {
		t.Fatalf("create: %v", err)
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"min.insync.replicas"}})
	if err != nil || len(entries) != 1 || entries[0].Value != "2" {
		t.Fatalf("min.insync.replicas described as %+v (%v), want 2", entries, err)
	}
	var leaders []int32
	fullISR := func() error {
		tms, err := admin.DescribeTopics([]string{topic})
		if err != nil {
			return err
		}
		if len(tms) != 1 || !errors.Is(tms[0].Err, sarama.ErrNoError) || len(tms[0].Partitions) != clientParts {
			return fmt.Errorf("described %+v", tms)
		}
		leaders = make([]int32, clientParts)
		for _, pm := range tms[0].Partitions {
			if len(pm.Replicas) != 3 {
				return fmt.Errorf("partition %d replicas %v, want 3", pm.ID, pm.Replicas)
			}
			if len(pm.Isr) != 3 {
				return fmt.Errorf("partition %d in-sync set %v", pm.ID, pm.Isr)
			}
			leaders[pm.ID] = pm.Leader
		}
		return nil
	}
	waitUntil(t, 30*time.Second, "three replicas in sync, as sarama describes them", fullISR)
	victim := mostLeader(leaders)
	// Without victim sarama must see other leaders and in-sync sets of
	// two: the killed broker fenced, then dropped for lagging.
	down := func() error {
		tms, err := admin.DescribeTopics([]string{topic})
		if err != nil {
			return err
		}
		if len(tms) != 1 || len(tms[0].Partitions) != clientParts {
			return fmt.Errorf("described %+v", tms)
		}
		for _, pm := range tms[0].Partitions {
			if pm.Leader == victim || pm.Leader < 0 || slices.Contains(pm.Isr, victim) || len(pm.Isr) != 2 || len(pm.Replicas) != 3 {
				return fmt.Errorf("partition %d leader %d replicas %v in sync %v", pm.ID, pm.Leader, pm.Replicas, pm.Isr)
			}
		}
		return nil
	}

	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		acked   [clientParts]map[int64]int64 // record number -> offset
		sent    [clientParts]int64
		count   atomic.Int64
		prodErr atomic.Pointer[error]
	)
	for p := range acked {
		acked[p] = map[int64]int64{}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var batch []*sarama.ProducerMessage
			for p := range int32(clientParts) {
				for range 5 {
					batch = append(batch, &sarama.ProducerMessage{Topic: topic, Partition: p,
						Value: sarama.StringEncoder(fmt.Sprintf("%d-%d", p, sent[p]))})
					sent[p]++
				}
			}
			err := producer.SendMessages(batch)
			failed := map[*sarama.ProducerMessage]bool{}
			var pe sarama.ProducerErrors
			if errors.As(err, &pe) {
				for _, e := range pe {
					failed[e.Msg] = true
				}
			} else if err != nil {
				prodErr.Store(&err)
				return
			}
			mu.Lock()
			for _, m := range batch {
				if !failed[m] {
					v, _ := m.Value.Encode()
					acked[m.Partition][parseNum(v)] = m.Offset
					count.Add(1)
				}
			}
			mu.Unlock()
			if len(pe) > 0 {
				// With 100 retries 100 ms apart a failover must not fail a send.
				err := error(pe)
				prodErr.Store(&err)
				return
			}
		}
	}()
	stopOnce := sync.OnceFunc(func() { close(stop); <-done })
	defer stopOnce()
	killAndRestart(t, c, victim, progressOf(&count, &prodErr), down)
	stopOnce()
	if e := prodErr.Load(); e != nil {
		t.Fatalf("sarama producer: %v", *e)
	}
	if err := producer.Close(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 40*time.Second, "the restarted broker back in every in-sync set, as sarama describes them", fullISR)

	consumer, err := sarama.NewConsumer(c.seeds(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for p := range int32(clientParts) {
		hw, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("partition %d high watermark: %v", p, err)
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume partition %d: %v", p, err)
		}
		var rb readBack
		timeout := time.After(30 * time.Second)
		for int64(len(rb.offs)) < hw && (len(rb.offs) == 0 || rb.offs[len(rb.offs)-1] < hw-1) {
			select {
			case m := <-pc.Messages():
				rb.nums, rb.offs = append(rb.nums, parseNum(m.Value)), append(rb.offs, m.Offset)
			case err := <-pc.Errors():
				t.Fatalf("consume partition %d: %v", p, err)
			case <-timeout:
				t.Fatalf("partition %d: read %d records in 30s, high watermark %d", p, len(rb.offs), hw)
			}
		}
		pc.AsyncClose()
		checkReadBack(t, p, rb, acked[p], sent[p], true)
	}
	t.Logf("%d records acknowledged", count.Load())
}

// keyBalancer sends a kafka-go message to the partition its key names.
type keyBalancer struct{}

func (keyBalancer) Balance(m kafka.Message, partitions ...int) int {
	p, _ := strconv.Atoi(string(m.Key))
	return p
}

// TestKafkaGoReplicated: kafka-go's Writer with RequiredAcks=RequireAll
// (no idempotence: at least once) through a leader's SIGKILL and restart,
// the topic created and described with kafka-go's Client, and read back
// with its Reader.
func TestKafkaGoReplicated(t *testing.T) {
	c := startCluster(t, 3, "--replica-lag-time-max", "3s")
	ctx := ctxFor(t, 120*time.Second)
	const topic = "kafkago-rep"
	kc := &kafka.Client{Addr: kafka.TCP(c.seeds()...), Timeout: 20 * time.Second}
	cr, err := kc.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: clientParts,
		ReplicationFactor: 3, ConfigEntries: []kafka.ConfigEntry{{ConfigName: "min.insync.replicas", ConfigValue: "2"}}}}})
	if err != nil || cr.Errors[topic] != nil {
		t.Fatalf("create: %v %v", err, cr)
	}
	var leaders []int32
	fullISR := func() error {
		m, err := kc.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return err
		}
		if len(m.Topics) != 1 || m.Topics[0].Error != nil || len(m.Topics[0].Partitions) != clientParts {
			return fmt.Errorf("metadata %+v", m.Topics)
		}
		leaders = make([]int32, clientParts)
		for _, pm := range m.Topics[0].Partitions {
			if len(pm.Replicas) != 3 || len(pm.Isr) != 3 {
				return fmt.Errorf("partition %d replicas %v in sync %v", pm.ID, pm.Replicas, pm.Isr)
			}
			leaders[pm.ID] = int32(pm.Leader.ID)
		}
		return nil
	}
	waitUntil(t, 30*time.Second, "three replicas in sync, as kafka-go describes them", fullISR)
	victim := mostLeader(leaders)
	down := func() error {
		m, err := kc.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return err
		}
		if len(m.Topics) != 1 || len(m.Topics[0].Partitions) != clientParts {
			return fmt.Errorf("metadata %+v", m.Topics)
		}
		for _, pm := range m.Topics[0].Partitions {
			isr := make([]int32, 0, len(pm.Isr))
			for _, b := range pm.Isr {
				isr = append(isr, int32(b.ID))
			}
			if int32(pm.Leader.ID) == victim || slices.Contains(isr, victim) || len(isr) != 2 {
				return fmt.Errorf("partition %d leader %d in sync %v", pm.ID, pm.Leader.ID, isr)
			}
		}
		return nil
	}

	w := &kafka.Writer{Addr: kafka.TCP(c.seeds()...), Topic: topic, Balancer: keyBalancer{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, MaxAttempts: 50, WriteBackoffMax: 200 * time.Millisecond}
	defer w.Close()
	var (
		mu      sync.Mutex
		acked   [clientParts]map[int64]int64
		sent    [clientParts]int64
		count   atomic.Int64
		prodErr atomic.Pointer[error]
	)
	for p := range acked {
		acked[p] = map[int64]int64{}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var batch []kafka.Message
			for p := range clientParts {
				for range 5 {
					batch = append(batch, kafka.Message{Key: []byte(strconv.Itoa(p)), Value: fmt.Appendf(nil, "%d-%d", p, sent[p])})
					sent[p]++
				}
			}
			err := w.WriteMessages(ctx, batch...)
			var we kafka.WriteErrors
			if err != nil && !errors.As(err, &we) {
				prodErr.Store(&err)
				return
			}
			mu.Lock()
			for i, m := range batch {
				if we == nil || we[i] == nil {
					p, _ := strconv.Atoi(string(m.Key))
					// kafka-go's synchronous Writer does not return offsets.
					acked[p][parseNum(m.Value)] = -1
					count.Add(1)
				}
			}
			mu.Unlock()
			if err != nil {
				prodErr.Store(&err)
				return
			}
		}
	}()
	stopOnce := sync.OnceFunc(func() { close(stop); <-done })
	defer stopOnce()
	killAndRestart(t, c, victim, progressOf(&count, &prodErr), down)
	stopOnce()
	if e := prodErr.Load(); e != nil {
		t.Fatalf("kafka-go writer: %v", *e)
	}
	waitUntil(t, 40*time.Second, "the restarted broker back in every in-sync set, as kafka-go describes them", fullISR)

	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {}}}
	for p := range clientParts {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	// Leadership goes back to the restarted broker (preferred-leader
	// election): kafka-go's Client asks the leader of its cached metadata
	// (6 s old at most) and does not retry NOT_LEADER_OR_FOLLOWER itself.
	var ends []kafka.PartitionOffsets
	waitUntil(t, 20*time.Second, "end offsets through kafka-go", func() error {
		lo, err := kc.ListOffsets(ctx, req)
		if err != nil {
			return err
		}
		ends = lo.Topics[topic]
		for _, po := range ends {
			if po.Error != nil {
				return fmt.Errorf("partition %d: %w", po.Partition, po.Error)
			}
		}
		return nil
	})
	for _, po := range ends {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.seeds(), Topic: topic, Partition: po.Partition, MaxWait: 100 * time.Millisecond})
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var rb readBack
		for len(rb.offs) == 0 || rb.offs[len(rb.offs)-1] < po.LastOffset-1 {
			m, err := r.ReadMessage(rctx)
			if err != nil {
				cancel()
				r.Close()
				t.Fatalf("partition %d: read %d records, end offset %d: %v", po.Partition, len(rb.offs), po.LastOffset, err)
			}
			rb.nums, rb.offs = append(rb.nums, parseNum(m.Value)), append(rb.offs, m.Offset)
		}
		cancel()
		r.Close()
		checkReadBack(t, int32(po.Partition), rb, acked[po.Partition], sent[po.Partition], false)
	}
	t.Logf("%d records acknowledged", count.Load())
}

// TestKcatReplicated: kcat (librdkafka) producing with acks=all and
// enable.idempotence=true through a leader's SIGKILL and restart: kcat
// exits 0, and a kcat consumer reads every line exactly once, in the
// order sent per key. kcat has no admin commands: franz-go's kadm creates
// the topic and watches progress.
func TestKcatReplicated(t *testing.T) {
	kcat := kcatPath(t)
	c := startCluster(t, 3, "--replica-lag-time-max", "3s")
	ctx := ctxFor(t, 120*time.Second)
	const topic, keys = "kcat-rep", 12
	adm := kadm.NewClient(c.client())
	two := "2"
	if r, err := adm.CreateTopic(ctx, clientParts, 3, map[string]*string{"min.insync.replicas": &two}, topic); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	var leaders []int32
	fullISR := func() error {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return err
		}
		d := td[topic]
		if d.Err != nil || len(d.Partitions) != clientParts {
			return fmt.Errorf("described %+v", d)
		}
		leaders = make([]int32, clientParts)
		for _, pd := range d.Partitions {
			if len(pd.Replicas) != 3 || len(pd.ISR) != 3 {
				return fmt.Errorf("partition %d replicas %v in sync %v", pd.Partition, pd.Replicas, pd.ISR)
			}
			leaders[pd.Partition] = pd.Leader
		}
		return nil
	}
	waitUntil(t, 30*time.Second, "three replicas in sync", fullISR)
	victim := mostLeader(leaders)

	cmd := exec.CommandContext(ctx, kcat, "-b", strings.Join(c.seeds(), ","), "-P", "-u", "-t", topic, "-K", ":",
		"-X", "acks=all", "-X", "enable.idempotence=true", "-X", "message.timeout.ms=60000", "-X", "linger.ms=5")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := newLogBuf()
	stderr.dumpOnFailure(t, "kcat -P stderr")
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	var sent [keys]int64
	write := func(n int) {
		t.Helper()
		bw := bufio.NewWriter(stdin)
		for i := range n {
			k := i % keys
			fmt.Fprintf(bw, "k%d:k%d-%d\n", k, k, sent[k])
			sent[k]++
		}
		if err := bw.Flush(); err != nil {
			t.Fatalf("writing to kcat: %v\n%s", err, stderr.tail(4000))
		}
	}
	// kcat reports nothing until it exits: its progress is the sum of
	// the partitions' end offsets.
	until := func(what string, n int64) {
		t.Helper()
		waitUntil(t, 30*time.Second, what, func() error {
			offs, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				return err
			}
			var got int64
			var each []string
			offs.Each(func(o kadm.ListedOffset) {
				if o.Err == nil {
					got += o.Offset
				}
				each = append(each, fmt.Sprintf("%d:%d(%v)", o.Partition, o.Offset, o.Err))
			})
			if got < n {
				return fmt.Errorf("%d of %d records in the log; end offsets %v", got, n, each)
			}
			return nil
		})
	}
	// kcat 1.7.1 reads stdin in fixed-size buffers and keeps the lines
	// past a buffer's end until more input comes (at most kcatHeld lines
	// of at least 8 bytes each): only that much less is waited for.
	const phase, kcatHeld = 1000, 512
	write(phase)
	until("kcat's records before the kill", phase-kcatHeld)
	c.procs[victim].kill()
	write(phase)
	until(fmt.Sprintf("kcat's records after broker %d was SIGKILLed", victim), 2*phase-kcatHeld)
	waitUntil(t, 20*time.Second, fmt.Sprintf("broker %d out of every in-sync set and leading nothing", victim), func() error {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return err
		}
		for _, pd := range td[topic].Partitions {
			if pd.Leader == victim || pd.Leader < 0 || slices.Contains(pd.ISR, victim) || len(pd.ISR) != 2 {
				return fmt.Errorf("partition %d leader %d in sync %v", pd.Partition, pd.Leader, pd.ISR)
			}
		}
		return nil
	})
	c.procs[victim].start()
	write(2 * phase)
	if err := stdin.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("kcat -P: %v\n%s", err, stderr.tail(4000))
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("kcat -P still running 60s after its input ended\n%s", stderr.tail(4000))
	}
	// kcat prints the killed broker's refused connections as errors too:
	// only a given-up message or a fatal (idempotence) error counts.
	if s := stderr.String(); strings.Contains(s, "Delivery failed") || strings.Contains(s, "atal") {
		t.Errorf("kcat -P reported failures (stderr above)")
	}
	waitUntil(t, 40*time.Second, "the restarted broker back in every in-sync set", fullISR)

	out := runKcat(t, kcat, 30*time.Second, "-b", strings.Join(c.seeds(), ","), "-C", "-t", topic, "-e", "-q",
		"-f", "%p %o %k %s\n")
	byKey := map[string][]int64{}
	keyPart := map[string]int32{}
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || !strings.HasPrefix(f[3], f[2]+"-") {
			t.Fatalf("kcat -C line %q", sc.Text())
		}
		p, _ := strconv.Atoi(f[0])
		if q, ok := keyPart[f[2]]; ok && q != int32(p) {
			t.Fatalf("key %s in partitions %d and %d", f[2], q, p)
		}
		keyPart[f[2]] = int32(p)
		byKey[f[2]] = append(byKey[f[2]], parseNum([]byte(f[3])))
		lines++
	}
	for k := range keys {
		key := "k" + strconv.Itoa(k)
		want := make([]int64, sent[k])
		for i := range want {
			want[i] = int64(i)
		}
		if got := byKey[key]; !slices.Equal(got, want) {
			t.Fatalf("key %s: read %d records, want 0..%d once each in order; first difference at %d", key, len(got), sent[k]-1, firstDiff(got, want))
		}
	}
	t.Logf("%d lines written and read back", lines)
}

// firstDiff is the first index where a and b differ.
func firstDiff(a, b []int64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
