package perf

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// resultSchema is bumped when a field of Result changes meaning, so compare
// can refuse files it would misread.
const resultSchema = 1

// Result is everything one run measured; it is written as result.json and
// read back by compare. Sizes are bytes, rates per second, MB = 10^6 bytes,
// latencies microseconds (field names carry the unit).
type Result struct {
	Schema       int       `json:"schema"`
	Tool         string    `json:"tool"`
	WorkloadFile string    `json:"workload_file"`
	Workload     Workload  `json:"workload"`
	StartedAt    time.Time `json:"started_at"`
	Brokers      string    `json:"brokers"`
	InProcess    bool      `json:"in_process_broker"`
	Interrupted  bool      `json:"interrupted,omitempty"`
	Host         HostInfo  `json:"host"`
	Settings     Settings  `json:"settings"`
	Probe        *Probe    `json:"rate_probe,omitempty"`

	// MeasuredSeconds is the length of the measured window, which every
	// rate below is divided by. Warm-up is outside it.
	MeasuredSeconds float64       `json:"measured_seconds"`
	Publish         PublishStats  `json:"publish"`
	Consume         *ConsumeStats `json:"consume,omitempty"`
	Backlog         *BacklogStats `json:"backlog,omitempty"`
	Broker          *BrokerStats  `json:"broker,omitempty"`
	// Series has one entry per second from the start of warm-up.
	Series []SecondStats `json:"series"`
}

// HostInfo describes the machine the client ran on.
type HostInfo struct {
	Hostname  string `json:"hostname"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
}

// Settings are the effective run settings after flags and defaults.
type Settings struct {
	TargetRate      int64    `json:"target_rate_msgs_per_sec"` // 0 = as fast as possible
	WarmupSeconds   float64  `json:"warmup_seconds"`
	DurationSeconds float64  `json:"duration_seconds"` // planned; see MeasuredSeconds
	Acks            string   `json:"acks"`
	Idempotent      bool     `json:"idempotent"`
	LingerMs        float64  `json:"linger_ms"`
	Producers       int      `json:"producers"`
	Consumers       int      `json:"consumers"`
	MessageBytes    int      `json:"message_bytes"`
	Topics          []string `json:"topics"`
}

// Probe is the short max-rate run behind a percentage producerRate.
type Probe struct {
	Seconds        float64 `json:"seconds"`
	MaxMsgsPerSec  float64 `json:"max_msgs_per_sec"`
	Percent        float64 `json:"percent"`
	RateMsgsPerSec int64   `json:"rate_msgs_per_sec"` // what the measured run used
}

// PublishStats covers the producers. Latency runs from the intended send
// time to the ack (see produceLoop for what "intended" means).
type PublishStats struct {
	Messages     int64        `json:"messages"` // acked in the window
	Bytes        int64        `json:"bytes"`
	MsgsPerSec   float64      `json:"msgs_per_sec"`
	MBPerSec     float64      `json:"mb_per_sec"`
	Errors       int64        `json:"errors"` // whole run, warm-up included
	FirstError   string       `json:"first_error,omitempty"`
	MissedSends  int64        `json:"missed_sends,omitempty"` // fixed rate: due in the window but never sent
	Latency      Percentiles  `json:"latency"`
	LatencyCurve []CurvePoint `json:"latency_curve"`
	PacingLag    *Percentiles `json:"pacing_lag,omitempty"` // fixed rate: how late sends left the loop (part of Latency)
}

// ConsumeStats covers the consumers of all subscriptions together.
// End-to-end latency runs from the timestamp in the payload's first 8
// bytes (the intended send time) to receipt.
type ConsumeStats struct {
	Messages      int64        `json:"messages"` // received in the window, all subscriptions
	Bytes         int64        `json:"bytes"`
	MsgsPerSec    float64      `json:"msgs_per_sec"`
	MBPerSec      float64      `json:"mb_per_sec"`
	Errors        int64        `json:"errors"`
	FirstError    string       `json:"first_error,omitempty"`
	EndToEnd      Percentiles  `json:"end_to_end_latency"`
	EndToEndCurve []CurvePoint `json:"end_to_end_latency_curve"`
}

// BacklogStats covers a consumerBacklogSizeGB run: producers fill a backlog
// while consumers are paused, then consumers resume and drain it.
type BacklogStats struct {
	TargetBytes   int64   `json:"target_bytes"`
	BuiltBytes    int64   `json:"built_bytes"` // acked while consumers were paused
	BuildSeconds  float64 `json:"build_seconds"`
	Drained       bool    `json:"drained"` // false: the run ended first
	DrainSeconds  float64 `json:"drain_seconds"`
	DrainMessages int64   `json:"drain_messages"` // read during the drain, all subscriptions
	// BehindAtDrain is what the subscriptions had still to read when the
	// drain started: the drain's goal, all subscriptions.
	BehindAtDrain int64 `json:"behind_at_drain_messages"`
	// ReadWhileBuilding counts messages consumers still delivered after
	// the pause, from fetches already in flight; the drain does not count
	// them, so DrainMessages can fall short of the built backlog by this.
	ReadWhileBuilding int64   `json:"read_while_building_messages"`
	DrainMsgsPerSec   float64 `json:"drain_msgs_per_sec"`
	DrainMBPerSec     float64 `json:"drain_mb_per_sec"`
	// ProducersDuringDrain: at a fixed rate producers keep going while the
	// backlog drains (as OMB does); at max rate they stop, or the drain
	// would race them.
	ProducersDuringDrain bool `json:"producers_during_drain"`
}

// BrokerStats is the broker process's resource use over the window.
type BrokerStats struct {
	Source      string  `json:"source"` // which process was measured
	CPUSeconds  float64 `json:"cpu_seconds"`
	CPUCores    float64 `json:"cpu_cores_avg"`
	RSSMaxBytes int64   `json:"rss_max_bytes"`
	RSSEndBytes int64   `json:"rss_end_bytes"`
	Error       string  `json:"error,omitempty"`
}

// SecondStats is one second of the run, by when events happened (an ack,
// a receipt), starting at the beginning of warm-up.
type SecondStats struct {
	Second         int     `json:"second"`
	Phase          string  `json:"phase"`
	PublishMsgs    int64   `json:"publish_msgs"`
	PublishBytes   int64   `json:"publish_bytes"`
	ConsumeMsgs    int64   `json:"consume_msgs"`
	ConsumeBytes   int64   `json:"consume_bytes"`
	Errors         int64   `json:"errors"`
	BrokerCPUCores float64 `json:"broker_cpu_cores,omitempty"`
	BrokerRSSBytes int64   `json:"broker_rss_bytes,omitempty"`
}

// WriteJSON writes r as indented JSON to path.
func (r *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadResult loads a result.json (or a directory holding one).
func ReadResult(path string) (*Result, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "result.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Schema != resultSchema {
		return nil, fmt.Errorf("%s: result schema %d, this binary reads %d", path, r.Schema, resultSchema)
	}
	return &r, nil
}

// WriteOutputs writes result.json, summary.md and chart.svg into dir.
func (r *Result) WriteOutputs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := r.WriteJSON(filepath.Join(dir, "result.json")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(r.Summary()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "chart.svg"), []byte(r.Chart()), 0o644)
}
