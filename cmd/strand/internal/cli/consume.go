package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/template"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

type consumeOpts struct {
	offset    string
	timestamp string
	group     string
	count     int
	timeout   time.Duration
	follow    bool
	format    string
	template  string
}

func consumeCmd(g *globals) *cobra.Command {
	var o consumeOpts
	c := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print a topic's records",
		Long: `Print records of TOPIC, one per line, from --offset or --timestamp (or, with
--group, from the group's committed offsets, committing what was printed).

Without --follow, consume stops once it has read up to the end offsets the
partitions had when it started; with --follow it waits for new records until
interrupted. -n stops after that many records; --timeout stops after that
long without a record (exit 1 if -n was not reached).

--format template prints --template, a Go text/template over .Topic,
.Partition, .Offset, .Timestamp (a time.Time), .Key, .Value and .Headers
(a list of .Key/.Value), followed by a newline; for example
  --format template --template '{{.Partition}}/{{.Offset}} {{.Key}}={{.Value}}'`,
		Args: exactArgs(1, "one TOPIC"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			return consume(cmd.Context(), g, args[0], o)
		}),
	}
	f := c.Flags()
	f.StringVarP(&o.offset, "offset", "o", "oldest", "where to start: oldest, newest or an offset N (with --group: where a partition without a commit starts)")
	f.StringVar(&o.timestamp, "timestamp", "", "start at the first record at or after this time (RFC 3339, or Unix milliseconds)")
	f.StringVarP(&o.group, "group", "g", "", "consume as this consumer group, from its committed offsets, committing what is printed")
	f.IntVarP(&o.count, "count", "n", 0, "stop after this many records (0: no limit)")
	f.DurationVar(&o.timeout, "timeout", 0, "stop after this long without a record (0: no limit)")
	f.BoolVarP(&o.follow, "follow", "F", false, "keep waiting for new records")
	f.StringVar(&o.format, "format", "raw", "output: raw (the value), json (one object per line) or template")
	f.StringVar(&o.template, "template", "", "Go text/template for --format template")
	return c
}

// consumedRecord is a record as json output and templates see it.
type consumedRecord struct {
	Topic     string           `json:"topic"`
	Partition int32            `json:"partition"`
	Offset    int64            `json:"offset"`
	Timestamp time.Time        `json:"timestamp"`
	Key       *string          `json:"key"`
	Value     string           `json:"value"`
	Headers   []consumedHeader `json:"headers"`
}

type consumedHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// templateRecord is what --template sees: Key as a plain string.
type templateRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       string
	Value     string
	Headers   []consumedHeader
}

// printer writes one record in the chosen format.
type printer func(w io.Writer, r *kgo.Record) error

func newPrinter(g *globals, o consumeOpts) (printer, error) {
	format := o.format
	if g.json {
		format = "json"
	}
	if o.template != "" && format != "template" {
		return nil, usageErrorf("--template needs --format template")
	}
	switch format {
	case "raw":
		return func(w io.Writer, r *kgo.Record) error {
			_, err := fmt.Fprintf(w, "%s\n", r.Value)
			return err
		}, nil
	case "json":
		return func(w io.Writer, r *kgo.Record) error {
			b, err := json.Marshal(toConsumed(r))
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(w, "%s\n", b)
			return err
		}, nil
	case "template":
		if o.template == "" {
			return nil, usageErrorf("--format template needs --template TEXT")
		}
		t, err := template.New("record").Option("missingkey=error").Parse(o.template)
		if err != nil {
			return nil, usageErrorf("--template: %v", err)
		}
		return func(w io.Writer, r *kgo.Record) error {
			c := toConsumed(r)
			tr := templateRecord{c.Topic, c.Partition, c.Offset, c.Timestamp, string(r.Key), c.Value, c.Headers}
			if err := t.Execute(w, tr); err != nil {
				return &exitError{ExitUsage, fmt.Errorf("--template: %v", err)}
			}
			_, err := io.WriteString(w, "\n")
			return err
		}, nil
	}
	return nil, usageErrorf("--format %q: want raw, json or template", format)
}

func toConsumed(r *kgo.Record) consumedRecord {
	c := consumedRecord{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp.UTC(), Value: string(r.Value), Headers: []consumedHeader{},
	}
	if r.Key != nil {
		k := string(r.Key)
		c.Key = &k
	}
	for _, h := range r.Headers {
		c.Headers = append(c.Headers, consumedHeader{h.Key, string(h.Value)})
	}
	return c
}

// startSpec is where consumption starts, parsed from --offset/--timestamp.
type startSpec struct {
	kind   string // oldest, newest, offset, timestamp
	offset int64
	millis int64
}

func parseStart(o consumeOpts) (startSpec, error) {
	if o.timestamp != "" {
		ms, err := parseTime(o.timestamp)
		if err != nil {
			return startSpec{}, usageErrorf("--timestamp %q: %v", o.timestamp, err)
		}
		return startSpec{kind: "timestamp", millis: ms}, nil
	}
	switch o.offset {
	case "oldest", "start", "beginning":
		return startSpec{kind: "oldest"}, nil
	case "newest", "end":
		return startSpec{kind: "newest"}, nil
	}
	n, err := strconv.ParseInt(o.offset, 10, 64)
	if err != nil || n < 0 {
		return startSpec{}, usageErrorf("--offset %q: want oldest, newest or an offset N >= 0", o.offset)
	}
	return startSpec{kind: "offset", offset: n}, nil
}

// parseTime reads RFC 3339 or Unix milliseconds.
func parseTime(s string) (int64, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, errors.New("want RFC 3339 (2026-12-06T08:00:00Z) or Unix milliseconds")
	}
	return t.UnixMilli(), nil
}

func (s startSpec) kgoOffset() kgo.Offset {
	switch s.kind {
	case "newest":
		return kgo.NewOffset().AtEnd()
	case "offset":
		return kgo.NewOffset().At(s.offset)
	case "timestamp":
		return kgo.NewOffset().AfterMilli(s.millis)
	}
	return kgo.NewOffset().AtStart()
}

// resolve returns each partition's start offset, and the end offsets now.
func (s startSpec) resolve(ctx context.Context, adm *kadm.Client, topic string) (starts, ends map[int32]int64, err error) {
	endOffs, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	oldest, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	from := oldest
	if s.kind == "timestamp" {
		if from, err = adm.ListOffsetsAfterMilli(ctx, s.millis, topic); err != nil {
			return nil, nil, err
		}
	}
	starts, ends = map[int32]int64{}, map[int32]int64{}
	for p, e := range endOffs[topic] {
		if e.Err != nil {
			return nil, nil, kafkaErr(e.Err, topic)
		}
		ends[p] = e.Offset
		switch s.kind {
		case "newest":
			starts[p] = e.Offset
		case "offset":
			// Clamped, so an offset past the end waits there (--follow)
			// instead of kgo resetting it to the start.
			starts[p] = e.Offset
			if o, ok := oldest.Lookup(topic, p); ok && o.Err == nil {
				starts[p] = min(max(s.offset, o.Offset), e.Offset)
			}
		default:
			f, ok := from.Lookup(topic, p)
			if !ok || f.Err != nil || f.Offset < 0 {
				starts[p] = e.Offset
			} else {
				starts[p] = f.Offset
			}
		}
	}
	return starts, ends, nil
}

func consume(ctx context.Context, g *globals, topic string, o consumeOpts) error {
	print, err := newPrinter(g, o)
	if err != nil {
		return err
	}
	start, err := parseStart(o)
	if err != nil {
		return err
	}
	if o.count < 0 {
		return usageErrorf("--count %d: want 0 or more", o.count)
	}
	probe, err := g.connect(ctx)
	if err != nil {
		return err
	}
	adm := kadm.NewClient(probe)
	defer adm.Close()
	if err := checkTopic(ctx, adm, topic, -1); err != nil {
		return err
	}
	starts, ends, err := start.resolve(ctx, adm, topic)
	if err != nil {
		return err
	}
	var opts []kgo.Opt
	if o.group != "" {
		committed, err := adm.FetchOffsets(ctx, o.group)
		if err != nil {
			return fmt.Errorf("group %s: %w", o.group, err)
		}
		for p := range starts {
			if c, ok := committed.Lookup(topic, p); ok && c.Err == nil && c.At >= 0 {
				starts[p] = c.At
			}
		}
		opts = append(opts, kgo.ConsumerGroup(o.group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(start.kgoOffset()), kgo.AutoCommitMarks())
	} else {
		parts := map[int32]kgo.Offset{}
		for p, off := range starts {
			parts[p] = kgo.NewOffset().At(off)
		}
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	}
	// Partitions still to read up to their end offset at start.
	pending := map[int32]int64{}
	for p, e := range ends {
		if starts[p] < e {
			pending[p] = e
		}
	}
	cl, err := g.connect(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	n := 0
	err = func() error {
		for {
			if o.count > 0 && n >= o.count {
				return nil
			}
			if !o.follow && len(pending) == 0 {
				return nil
			}
			pctx, cancel := ctx, context.CancelFunc(func() {})
			if o.timeout > 0 {
				pctx, cancel = context.WithTimeout(ctx, o.timeout)
			}
			max := -1
			if o.count > 0 {
				max = o.count - n
			}
			fs := cl.PollRecords(pctx, max)
			cancel()
			var ferr error
			fs.EachError(func(_ string, _ int32, err error) {
				if ferr == nil {
					ferr = err
				}
			})
			for _, r := range fs.Records() {
				if err := print(g.env.Stdout, r); err != nil {
					return err
				}
				n++
				if o.group != "" {
					cl.MarkCommitRecords(r)
				}
				if e, ok := pending[r.Partition]; ok && r.Offset+1 >= e {
					delete(pending, r.Partition)
				}
			}
			switch {
			case ferr == nil:
			case errors.Is(ferr, context.DeadlineExceeded) && ctx.Err() == nil:
				if o.count > 0 && n < o.count {
					return failedf("no record for %v: read %d of %d records", o.timeout, n, o.count)
				}
				return nil
			case errors.Is(ferr, context.Canceled), errors.Is(ferr, kgo.ErrClientClosed):
				return nil // interrupted
			case errors.Is(ferr, kerr.UnknownTopicOrPartition):
				return kafkaErr(ferr, topic)
			default:
				return ferr
			}
		}
	}()
	if o.group != "" {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if cerr := cl.CommitMarkedOffsets(cctx); cerr != nil && err == nil {
			err = fmt.Errorf("committing group %s's offsets: %w", o.group, cerr)
		}
		cl.LeaveGroup()
	}
	if g.env.StderrTerminal {
		fmt.Fprintf(g.env.Stderr, "consumed %d records from %s\n", n, topic)
	}
	return err
}
