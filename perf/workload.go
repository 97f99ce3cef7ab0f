package perf

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Workload is one benchmark description in the OpenMessaging Benchmark (OMB)
// workload shape, so an OMB workload file runs here unchanged. Fields after
// the OMB block are Strand extensions; all are optional.
type Workload struct {
	Name                    string         `json:"name"`
	Topics                  int            `json:"topics"`
	PartitionsPerTopic      int            `json:"partitionsPerTopic"`
	MessageSize             int            `json:"messageSize"`
	PayloadFile             string         `json:"payloadFile,omitempty"`
	SubscriptionsPerTopic   int            `json:"subscriptionsPerTopic"`
	ConsumerPerSubscription int            `json:"consumerPerSubscription"`
	ProducersPerTopic       int            `json:"producersPerTopic"`
	ProducerRate            Rate           `json:"producerRate"`
	KeyDistributor          KeyDistributor `json:"keyDistributor"`
	// OMB declares this a whole number of GB; fractions are accepted so a
	// test can build a backlog of a few MB.
	ConsumerBacklogSizeGB float64 `json:"consumerBacklogSizeGB"`
	BacklogDrainRatio     float64 `json:"backlogDrainRatio"`
	TestDurationMinutes   int     `json:"testDurationMinutes,omitempty"`
	WarmupDurationMinutes int     `json:"warmupDurationMinutes,omitempty"`

	// OMB payload knobs that are accepted so OMB files load, but ignored:
	// payloads here are always random (incompressible) unless payloadFile
	// is set. Load warns when one of them is set.
	UseRandomizedPayloads     bool    `json:"-"`
	RandomBytesRatio          float64 `json:"-"`
	RandomizedPayloadPoolSize int     `json:"-"`

	// Strand extensions.
	TestDurationSeconds   int     `json:"testDurationSeconds,omitempty"`   // instead of minutes, for short CI runs
	WarmupDurationSeconds int     `json:"warmupDurationSeconds,omitempty"` // instead of minutes
	RateProbeSeconds      int     `json:"rateProbeSeconds,omitempty"`      // length of the max-rate probe behind a "N%" rate
	Idempotent            bool    `json:"idempotent"`                      // idempotent producer (off by default)
	LingerMs              float64 `json:"lingerMs"`                        // producer linger
	MaxBufferedRecords    int     `json:"maxBufferedRecords"`              // per producer client: its in-flight window
	ReplicationFactor     int     `json:"replicationFactor"`               // for the topics the run creates

	// payloadPath is PayloadFile resolved against the workload file's
	// folder; warnings are non-fatal remarks for stderr.
	payloadPath string
	warnings    []string
	// testSet, warmupSet and warmupSecsSet record which duration
	// spellings the file used (an explicit 0 warm-up is not the default).
	testSet, warmupSet, warmupSecsSet bool
}

// Defaults for fields a workload may leave out.
const (
	defaultWarmup           = time.Minute // OMB's default
	defaultRateProbeSeconds = 10
	defaultLingerMs         = 1.0 // OMB's Kafka driver uses linger.ms=1
	defaultMaxBuffered      = 10_000
	minMessageSize          = 8 // the send timestamp lives in bytes [0:8)
	maxPartitionsTotal      = 1_000_000
)

// TestDuration is how long the measured part of the run lasts.
func (w *Workload) TestDuration() time.Duration {
	if w.TestDurationSeconds > 0 {
		return time.Duration(w.TestDurationSeconds) * time.Second
	}
	return time.Duration(w.TestDurationMinutes) * time.Minute
}

// WarmupDuration is how long the run goes before measuring starts.
func (w *Workload) WarmupDuration() time.Duration {
	switch {
	case w.warmupSecsSet:
		return time.Duration(w.WarmupDurationSeconds) * time.Second
	case w.warmupSet:
		return time.Duration(w.WarmupDurationMinutes) * time.Minute
	}
	return defaultWarmup
}

// Linger is the producer linger as a duration.
func (w *Workload) Linger() time.Duration {
	return time.Duration(w.LingerMs * float64(time.Millisecond))
}

// BacklogBytes is the backlog to build before draining; 0 means none.
func (w *Workload) BacklogBytes() int64 { return int64(w.ConsumerBacklogSizeGB * 1e9) }

// builtin holds the standard workloads so `strand perf run NAME` works
// without a checkout of the repository.
//
//go:embed workloads/*.yaml
var builtin embed.FS

// BuiltinWorkloads lists the names of the workloads shipped in the binary.
func BuiltinWorkloads() []string {
	ents, _ := fs.ReadDir(builtin, "workloads")
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return names
}

// LoadWorkload reads a workload file. A path that does not exist but names a
// built-in workload ("max-throughput-1kb" or "max-throughput-1kb.yaml")
// loads the built-in copy.
func LoadWorkload(path string) (*Workload, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml") + ".yaml"
		if b, berr := builtin.ReadFile("workloads/" + name); berr == nil && !strings.ContainsRune(path, os.PathSeparator) {
			return ParseWorkload(b, "builtin:"+name)
		}
		return nil, fmt.Errorf("workload %s: no such file (built-in workloads: %s)", path, strings.Join(BuiltinWorkloads(), ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	w, err := ParseWorkload(data, path)
	if err != nil {
		return nil, err
	}
	if w.PayloadFile != "" {
		w.payloadPath = w.PayloadFile
		if !filepath.IsAbs(w.payloadPath) {
			w.payloadPath = filepath.Join(filepath.Dir(path), w.payloadPath)
		}
		st, err := os.Stat(w.payloadPath)
		if err != nil {
			return nil, &WorkloadError{File: path, Field: "payloadFile", Problem: err.Error()}
		}
		if st.Size() < minMessageSize {
			return nil, &WorkloadError{File: path, Field: "payloadFile", Problem: fmt.Sprintf("%s has %d bytes, need at least %d for the send timestamp", w.payloadPath, st.Size(), minMessageSize)}
		}
		if w.MessageSize != 0 && int64(w.MessageSize) != st.Size() {
			w.warnings = append(w.warnings, fmt.Sprintf("messageSize %d differs from payloadFile's %d bytes; the file's size is used", w.MessageSize, st.Size()))
		}
		w.MessageSize = int(st.Size())
	}
	return w, nil
}

// WorkloadError says which field of which file is wrong and how.
type WorkloadError struct {
	File    string
	Line    int // 0 when the problem has no single line (a missing field)
	Field   string
	Problem string
}

func (e *WorkloadError) Error() string {
	var b strings.Builder
	b.WriteString("workload ")
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": field %q", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Problem)
	return b.String()
}

// ParseWorkload parses and validates one workload. file names it in errors.
// It walks the YAML node tree itself rather than decoding into the struct,
// so every error can name the field and line, and unknown or repeated
// fields are errors rather than silently ignored.
func ParseWorkload(data []byte, file string) (*Workload, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, &WorkloadError{File: file, Problem: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, &WorkloadError{File: file, Line: doc.Line, Problem: "must be a mapping of field: value"}
	}
	w := &Workload{BacklogDrainRatio: 1, LingerMs: defaultLingerMs, MaxBufferedRecords: defaultMaxBuffered,
		ReplicationFactor: 1, RateProbeSeconds: defaultRateProbeSeconds}
	fields := w.fieldTable()
	lines := map[string]int{}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if _, dup := lines[k.Value]; dup {
			return nil, &WorkloadError{File: file, Line: k.Line, Field: k.Value, Problem: fmt.Sprintf("given twice (first on line %d)", lines[k.Value])}
		}
		lines[k.Value] = k.Line
		ptr, ok := fields[k.Value]
		if !ok {
			return nil, &WorkloadError{File: file, Line: k.Line, Field: k.Value, Problem: "unknown field" + suggest(k.Value, fields)}
		}
		if err := decodeScalar(v, ptr); err != nil {
			return nil, &WorkloadError{File: file, Line: v.Line, Field: k.Value, Problem: err.Error()}
		}
	}
	_, w.testSet = lines["testDurationMinutes"]
	_, w.warmupSet = lines["warmupDurationMinutes"]
	_, w.warmupSecsSet = lines["warmupDurationSeconds"]
	if err := w.validate(lines); err != nil {
		err.File = file
		return nil, err
	}
	for _, f := range []string{"useRandomizedPayloads", "randomBytesRatio", "randomizedPayloadPoolSize"} {
		if _, ok := lines[f]; ok {
			w.warnings = append(w.warnings, f+" is ignored: payloads are random bytes unless payloadFile is set")
		}
	}
	return w, nil
}

// fieldTable maps every accepted YAML name to the field it fills.
func (w *Workload) fieldTable() map[string]any {
	return map[string]any{
		"name": &w.Name, "topics": &w.Topics, "partitionsPerTopic": &w.PartitionsPerTopic,
		"messageSize": &w.MessageSize, "payloadFile": &w.PayloadFile,
		"subscriptionsPerTopic": &w.SubscriptionsPerTopic, "consumerPerSubscription": &w.ConsumerPerSubscription,
		"producersPerTopic": &w.ProducersPerTopic, "producerRate": &w.ProducerRate,
		"keyDistributor": &w.KeyDistributor, "consumerBacklogSizeGB": &w.ConsumerBacklogSizeGB,
		"backlogDrainRatio": &w.BacklogDrainRatio, "testDurationMinutes": &w.TestDurationMinutes,
		"warmupDurationMinutes": &w.WarmupDurationMinutes, "useRandomizedPayloads": &w.UseRandomizedPayloads,
		"randomBytesRatio": &w.RandomBytesRatio, "randomizedPayloadPoolSize": &w.RandomizedPayloadPoolSize,
		"testDurationSeconds": &w.TestDurationSeconds, "warmupDurationSeconds": &w.WarmupDurationSeconds,
		"rateProbeSeconds": &w.RateProbeSeconds, "idempotent": &w.Idempotent, "lingerMs": &w.LingerMs,
		"maxBufferedRecords": &w.MaxBufferedRecords, "replicationFactor": &w.ReplicationFactor,
	}
}

// decodeScalar fills *ptr from a scalar node, with messages that say what
// was expected instead of yaml's "cannot unmarshal !!str into int".
func decodeScalar(n *yaml.Node, ptr any) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a single value, got a %s", kindName(n.Kind))
	}
	if n.ShortTag() == "!!null" {
		return errors.New("has no value")
	}
	tag := n.ShortTag()
	switch p := ptr.(type) {
	case *int:
		if tag != "!!int" {
			return fmt.Errorf("want a whole number, got %q", n.Value)
		}
		return n.Decode(p)
	case *float64:
		if tag != "!!int" && tag != "!!float" {
			return fmt.Errorf("want a number, got %q", n.Value)
		}
		return n.Decode(p)
	case *bool:
		if tag != "!!bool" {
			return fmt.Errorf("want true or false, got %q", n.Value)
		}
		return n.Decode(p)
	case *string:
		*p = n.Value
		return nil
	case *Rate:
		r, err := ParseRate(n.Value)
		*p = r
		return err
	case *KeyDistributor:
		k := KeyDistributor(n.Value)
		if !k.valid() {
			return fmt.Errorf("want one of %s, got %q", strings.Join(keyDistributorNames(), ", "), n.Value)
		}
		*p = k
		return nil
	}
	panic(fmt.Sprintf("perf: no decoder for %T", ptr))
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

// validate checks ranges and required fields. lines gives the line of each
// field present, so range errors point at it.
func (w *Workload) validate(lines map[string]int) *WorkloadError {
	bad := func(field, problem string, args ...any) *WorkloadError {
		return &WorkloadError{Line: lines[field], Field: field, Problem: fmt.Sprintf(problem, args...)}
	}
	need := []string{"name", "topics", "partitionsPerTopic", "producersPerTopic", "subscriptionsPerTopic", "producerRate"}
	if w.PayloadFile == "" {
		need = append(need, "messageSize")
	}
	for _, f := range need {
		if _, ok := lines[f]; !ok {
			return bad(f, "is required")
		}
	}
	_, secs := lines["testDurationSeconds"]
	switch {
	case w.testSet && secs:
		return bad("testDurationSeconds", "give testDurationMinutes or testDurationSeconds, not both")
	case !w.testSet && !secs:
		return bad("testDurationMinutes", "is required (or testDurationSeconds)")
	}
	if _, s := lines["warmupDurationSeconds"]; s && w.warmupSet {
		return bad("warmupDurationSeconds", "give warmupDurationMinutes or warmupDurationSeconds, not both")
	}
	consumers := w.SubscriptionsPerTopic > 0
	switch {
	case strings.TrimSpace(w.Name) == "":
		return bad("name", "must not be empty")
	case w.Topics < 1:
		return bad("topics", "must be at least 1, got %d", w.Topics)
	case w.PartitionsPerTopic < 1:
		return bad("partitionsPerTopic", "must be at least 1, got %d", w.PartitionsPerTopic)
	case w.Topics*w.PartitionsPerTopic > maxPartitionsTotal:
		return bad("partitionsPerTopic", "topics × partitionsPerTopic = %d is over the %d this harness supports", w.Topics*w.PartitionsPerTopic, maxPartitionsTotal)
	case w.PayloadFile == "" && w.MessageSize < minMessageSize:
		return bad("messageSize", "must be at least %d (the send timestamp is in the first 8 bytes), got %d", minMessageSize, w.MessageSize)
	case w.ProducersPerTopic < 1:
		return bad("producersPerTopic", "must be at least 1, got %d", w.ProducersPerTopic)
	case w.SubscriptionsPerTopic < 0:
		return bad("subscriptionsPerTopic", "must be 0 (produce only) or more, got %d", w.SubscriptionsPerTopic)
	case consumers && w.ConsumerPerSubscription < 1:
		return bad("consumerPerSubscription", "must be at least 1 when subscriptionsPerTopic > 0, got %d", w.ConsumerPerSubscription)
	case w.ConsumerBacklogSizeGB < 0:
		return bad("consumerBacklogSizeGB", "must not be negative, got %g", w.ConsumerBacklogSizeGB)
	case w.ConsumerBacklogSizeGB > 0 && !consumers:
		return bad("consumerBacklogSizeGB", "a backlog needs subscriptionsPerTopic > 0")
	case w.BacklogDrainRatio <= 0 || w.BacklogDrainRatio > 1:
		return bad("backlogDrainRatio", "must be in (0, 1], got %g", w.BacklogDrainRatio)
	case w.TestDurationMinutes < 0 || w.TestDurationSeconds < 0 || w.TestDuration() <= 0:
		return bad(durationField(lines, "test"), "must be positive")
	case w.WarmupDurationMinutes < 0 || w.WarmupDurationSeconds < 0:
		return bad(durationField(lines, "warmup"), "must not be negative")
	case w.RateProbeSeconds < 1:
		return bad("rateProbeSeconds", "must be at least 1, got %d", w.RateProbeSeconds)
	case w.LingerMs < 0 || w.LingerMs > 60_000:
		return bad("lingerMs", "must be in [0, 60000], got %g", w.LingerMs)
	case w.MaxBufferedRecords < 1:
		return bad("maxBufferedRecords", "must be at least 1, got %d", w.MaxBufferedRecords)
	case w.ReplicationFactor < 1 && w.ReplicationFactor != -1:
		return bad("replicationFactor", "must be at least 1, or -1 for the broker's default, got %d", w.ReplicationFactor)
	}
	if w.KeyDistributor == "" {
		w.KeyDistributor = NoKey
	}
	return nil
}

func durationField(lines map[string]int, which string) string {
	if _, ok := lines[which+"DurationSeconds"]; ok {
		return which + "DurationSeconds"
	}
	return which + "DurationMinutes"
}

// suggest returns ` (did you mean "x"?)` for a close known field name, so a
// typo like partitionPerTopic is caught and explained.
func suggest(name string, fields map[string]any) string {
	best, bestD := "", 4
	for f := range fields {
		if d := editDistance(strings.ToLower(name), strings.ToLower(f)); d < bestD || (d == bestD && f < best) {
			best, bestD = f, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
