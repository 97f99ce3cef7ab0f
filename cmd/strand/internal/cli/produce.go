package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

type produceOpts struct {
	file      string
	key       string
	keySep    string
	headers   []string
	acks      string
	partition int32
}

func produceCmd(g *globals) *cobra.Command {
	var o produceOpts
	c := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce records, one per line, from stdin or a file",
		Long: `Produce one record per input line (the newline is not part of the value).
--key gives every record the same key; --key-separator splits each line at
the first separator into key and value. The topic must exist.`,
		Args: exactArgs(1, "one TOPIC"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			return produce(cmd.Context(), g, args[0], o)
		}),
	}
	f := c.Flags()
	f.StringVarP(&o.file, "file", "f", "", "read records from this file instead of stdin")
	f.StringVarP(&o.key, "key", "k", "", "key for every record")
	f.StringVar(&o.keySep, "key-separator", "", "split each line at the first SEP into key and value")
	f.StringArrayVarP(&o.headers, "header", "H", nil, "record header KEY=VALUE (repeatable)")
	f.StringVar(&o.acks, "acks", "all", "acknowledgements to wait for: all, 1 or 0")
	f.Int32Var(&o.partition, "partition", -1, "produce to this partition (-1: by key, or spread)")
	return c
}

// produceSummary is the final line (or --json document) of a produce.
type produceSummary struct {
	Topic   string  `json:"topic"`
	Records int64   `json:"records"`
	Bytes   int64   `json:"bytes"`
	Failed  int64   `json:"failed"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
}

func produce(ctx context.Context, g *globals, topic string, o produceOpts) error {
	if o.key != "" && o.keySep != "" {
		return usageErrorf("--key and --key-separator cannot be used together")
	}
	hdrs, err := parseKV("header", o.headers)
	if err != nil {
		return err
	}
	opts := []kgo.Opt{kgo.DefaultProduceTopic(topic)}
	switch o.acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return usageErrorf("--acks %q: want all, 1 or 0", o.acks)
	}
	if o.partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	in, size := g.env.Stdin, int64(-1)
	if o.file != "" {
		f, err := os.Open(o.file)
		if err != nil {
			return failedf("%v", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		in = f
	}
	cl, err := g.connect(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := checkTopic(ctx, kadm.NewClient(cl), topic, o.partition); err != nil {
		return err
	}

	var (
		sum      = produceSummary{Topic: topic}
		acked    atomic.Int64
		failed   atomic.Int64
		errOnce  sync.Once
		firstErr error
	)
	start := time.Now()
	var prog *progress
	if g.env.StderrTerminal && !g.json {
		prog = startProgress(g.env.Stderr, size, &acked)
		defer prog.stop()
	}
	r := bufio.NewReaderSize(in, 1<<16)
	var read int64
	for {
		line, rerr := r.ReadBytes('\n')
		read += int64(len(line))
		if prog != nil {
			prog.read.Store(read)
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > 0 || (rerr == nil) {
			rec := &kgo.Record{Value: line, Partition: o.partition}
			switch {
			case o.key != "":
				rec.Key = []byte(o.key)
			case o.keySep != "":
				if k, v, ok := bytes.Cut(line, []byte(o.keySep)); ok {
					rec.Key, rec.Value = k, v
				}
			}
			for _, h := range hdrs {
				rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
			}
			sum.Records++
			sum.Bytes += int64(len(rec.Key) + len(rec.Value))
			cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					return
				}
				acked.Add(1)
			})
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return failedf("reading input: %v", rerr)
		}
	}
	ferr := cl.Flush(ctx)
	if prog != nil {
		prog.stop()
	}
	sum.Seconds = time.Since(start).Seconds()
	sum.Failed = failed.Load()
	var err2 error
	switch {
	case firstErr != nil:
		err2 = kafkaErr(firstErr, topic)
	case ferr != nil:
		err2 = ferr
	}
	if err2 != nil {
		sum.Error = err2.Error()
	}
	if g.json {
		if err := writeJSON(g.env.Stdout, sum); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(g.env.Stderr, "produced %d records (%s) to %s in %.2fs: %s",
			sum.Records-sum.Failed, byteSize(sum.Bytes), topic, sum.Seconds, rate(sum.Records-sum.Failed, sum.Bytes, sum.Seconds))
		if sum.Failed > 0 {
			fmt.Fprintf(g.env.Stderr, "; %d FAILED", sum.Failed)
		}
		fmt.Fprintln(g.env.Stderr)
	}
	if err2 != nil {
		return &exitError{ExitFailed, fmt.Errorf("%d of %d records not produced: %w", sum.Failed, sum.Records, err2)}
	}
	return nil
}

// checkTopic fails fast, with what to do, on a topic or partition that
// does not exist: kgo would otherwise retry until its delivery timeout.
func checkTopic(ctx context.Context, adm *kadm.Client, topic string, partition int32) error {
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return err
	}
	d, ok := td[topic]
	if !ok {
		return failedf("%v", kafkaErr(kerr.UnknownTopicOrPartition, topic))
	}
	if d.Err != nil {
		return failedf("%v", kafkaErr(d.Err, topic))
	}
	if partition >= 0 {
		if _, ok := d.Partitions[partition]; !ok {
			return failedf("topic %q has no partition %d (it has %d)", topic, partition, len(d.Partitions))
		}
	}
	return nil
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func rate(records, bytes int64, secs float64) string {
	if secs <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f records/s, %s/s", float64(records)/secs, byteSize(int64(float64(bytes)/secs)))
}
