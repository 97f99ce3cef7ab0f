package adminapi

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strand-io/strand/cluster"
	"github.com/strand-io/strand/dma"
)

// Metric families. Every name starts with strand_; labels are core (the
// reactor id; the CPU is in strand_core_info), api (a Kafka API name),
// op (read, write, sync), topic, partition and group.
//
// Cardinality is bounded by what the broker itself bounds, so a scrape can
// never grow without limit: per core about 20 series, plus one per Kafka API
// that core has served (at most the ~30 APIs Strand implements) and 3 ops x
// 17 histogram series; per partition 8 series (partitions are bounded by
// --max-partitions); per group 1, plus 2 per partition it has committed
// offsets for. Nothing is labelled by client, connection, member or
// producer id, which are unbounded.
var (
	coreLabels = []string{"core"}
	partLabels = []string{"topic", "partition", "core"}

	descCoreInfo  = prometheus.NewDesc("strand_core_info", "A reactor core and the CPU its thread is pinned to (value 1).", []string{"core", "cpu"}, nil)
	descRequests  = prometheus.NewDesc("strand_core_requests_total", "Kafka requests the core parsed, by API.", []string{"core", "api"}, nil)
	descBytesIn   = prometheus.NewDesc("strand_core_bytes_in_total", "Request bytes (whole frames) the core read from clients.", coreLabels, nil)
	descBytesOut  = prometheus.NewDesc("strand_core_bytes_out_total", "Response bytes (whole frames) the core encoded for clients.", coreLabels, nil)
	descBusy      = prometheus.NewDesc("strand_core_busy_seconds_total", "Time the core spent running callbacks, messages, timers and I/O completions; rate() of it is the core's busy fraction (0-1).", coreLabels, nil)
	descSent      = prometheus.NewDesc("strand_core_messages_sent_total", "Cross-core messages this core sent.", coreLabels, nil)
	descReceived  = prometheus.NewDesc("strand_core_messages_received_total", "Cross-core messages this core ran.", coreLabels, nil)
	descOverflow  = prometheus.NewDesc("strand_core_messages_overflowed_total", "Sends that found the destination ring full and spilled into overflow.", coreLabels, nil)
	descPending   = prometheus.NewDesc("strand_core_overflow_pending", "Messages waiting in this core's overflow lists now.", coreLabels, nil)
	descInboxMax  = prometheus.NewDesc("strand_core_inbox_depth_max", "Largest backlog one inbound ring held when drained.", coreLabels, nil)
	descWakeups   = prometheus.NewDesc("strand_core_wakeups_total", "Service tasks run (wake-ups for messages, timers and completions).", coreLabels, nil)
	descStalls    = prometheus.NewDesc("strand_core_stalls_total", "Pieces of loop work that ran past the stall threshold (--stall-threshold), start-up and shutdown work included.", coreLabels, nil)
	descExpStalls = prometheus.NewDesc("strand_core_expected_stalls_total", "Of strand_core_stalls_total, the start-up and shutdown work that is long by nature (not warned about).", coreLabels, nil)
	descIOOps     = prometheus.NewDesc("strand_io_ops_total", "I/O operations the core submitted to its engine (io_uring unless the broker fell back), by op.", []string{"core", "op"}, nil)
	descIOLatency = prometheus.NewDesc("strand_io_latency_seconds", "Submission to completion of the core's I/O; op=sync is an fdatasync, or a linked write+fdatasync: what an acks=all produce waits for.", []string{"core", "op"}, nil)
	descCoreParts = prometheus.NewDesc("strand_core_partitions", "Partitions open on the core.", coreLabels, nil)

	descRecordsIn  = prometheus.NewDesc("strand_partition_records_in_total", "Records appended (acknowledged) since the broker started.", partLabels, nil)
	descPBytesIn   = prometheus.NewDesc("strand_partition_bytes_in_total", "Record-batch bytes appended since the broker started.", partLabels, nil)
	descRecordsOut = prometheus.NewDesc("strand_partition_records_out_total", "Records returned to fetches since the broker started.", partLabels, nil)
	descPBytesOut  = prometheus.NewDesc("strand_partition_bytes_out_total", "Record-batch bytes returned to fetches since the broker started.", partLabels, nil)
	descEndOffset  = prometheus.NewDesc("strand_partition_end_offset", "The next offset the partition will assign.", partLabels, nil)
	descHW         = prometheus.NewDesc("strand_partition_high_watermark", "The offset below which records are durable and readable.", partLabels, nil)
	descStart      = prometheus.NewDesc("strand_partition_log_start_offset", "The partition's first offset still kept.", partLabels, nil)
	descSize       = prometheus.NewDesc("strand_partition_log_size_bytes", "Bytes the partition's segments hold on disk.", partLabels, nil)

	descConnsOpen     = prometheus.NewDesc("strand_connections_open", "Client connections open now.", nil, nil)
	descConnsRefused  = prometheus.NewDesc("strand_connections_refused_total", "Connections closed on open by --max-connections, --max-connections-per-ip or the descriptor guard.", nil, nil)
	descIdleClosed    = prometheus.NewDesc("strand_connections_idle_closed_total", "Connections closed by --idle-timeout.", nil, nil)
	descReqTimeouts   = prometheus.NewDesc("strand_connections_request_timeouts_total", "Connections closed because a started request frame did not complete within --request-timeout.", nil, nil)
	descSlowReaders   = prometheus.NewDesc("strand_connections_slow_readers_closed_total", "Connections closed for sending past --max-connection-buffered-bytes while their responses went unread.", nil, nil)
	descProtoErrors   = prometheus.NewDesc("strand_protocol_errors_total", "Connections closed for a malformed or unsupported frame.", nil, nil)
	descPanics        = prometheus.NewDesc("strand_handler_panics_total", "Protocol handler panics recovered (each closed its connection).", nil, nil)
	descFetchMemory   = prometheus.NewDesc("strand_fetch_memory_bytes", "Fetch response memory reserved now, against --fetch-memory-bytes.", nil, nil)
	descFetchWaits    = prometheus.NewDesc("strand_fetch_memory_waits_total", "Fetches that waited for the fetch memory budget.", nil, nil)
	descPartsRefused  = prometheus.NewDesc("strand_partitions_refused_total", "Topics or partition additions refused by --max-partitions or the descriptor budget.", nil, nil)
	descAutoThrottled = prometheus.NewDesc("strand_auto_create_throttled_total", "Implicit topic creations refused by --auto-create-per-second.", nil, nil)
	descGroupMembers  = prometheus.NewDesc("strand_group_members", "Members of the consumer group.", []string{"group"}, nil)
	descCommitted     = prometheus.NewDesc("strand_group_committed_offset", "The group's committed offset for a partition.", []string{"group", "topic", "partition"}, nil)
	descLag           = prometheus.NewDesc("strand_group_lag", "High watermark minus the group's committed offset (records the group has yet to consume and commit).", []string{"group", "topic", "partition"}, nil)

	allDescs = []*prometheus.Desc{descCoreInfo, descRequests, descBytesIn, descBytesOut, descBusy, descSent, descReceived,
		descOverflow, descPending, descInboxMax, descWakeups, descStalls, descExpStalls, descIOOps, descIOLatency, descCoreParts,
		descRecordsIn, descPBytesIn, descRecordsOut, descPBytesOut, descEndOffset, descHW, descStart, descSize,
		descGroupMembers, descCommitted, descLag,
		descConnsOpen, descConnsRefused, descIdleClosed, descReqTimeouts, descSlowReaders, descProtoErrors, descPanics,
		descFetchMemory, descFetchWaits, descPartsRefused, descAutoThrottled}
)

// collector gathers every metric at scrape time from one cluster.Node
// snapshot: the cores' counters are read by message on each core, so the
// data path has no metric atomics or locks, and a scrape costs one message
// per core plus the encoding here.
type collector struct{ s *Server }

func newCollector(s *Server) *collector { return &collector{s} }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	b := c.s.broker.Load()
	if b == nil {
		return // starting: no series rather than an error
	}
	snap, err := c.s.takeSnapshot(context.Background(), *b)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descBusy, err)
		return
	}
	for _, cs := range snap {
		collectCore(ch, cs)
	}
	collectLimits(ch, (*b).Limits())
	parts := partIndex(snap)
	for _, cs := range snap {
		for _, g := range cs.Groups {
			ch <- prometheus.MustNewConstMetric(descGroupMembers, prometheus.GaugeValue, float64(len(g.Members)), g.ID)
			for _, o := range g.Offsets {
				p := strconv.Itoa(int(o.Partition))
				ch <- prometheus.MustNewConstMetric(descCommitted, prometheus.GaugeValue, float64(o.Committed), g.ID, o.Topic, p)
				if _, lag := lagOf(parts, o); lag >= 0 {
					ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(lag), g.ID, o.Topic, p)
				}
			}
		}
	}
}

// collectLimits exports what the broker's limits did: each limit in
// docs/RELIABILITY.md logs when it bites and counts here.
func collectLimits(ch chan<- prometheus.Metric, l cluster.LimitStats) {
	c := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	g := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	g(descConnsOpen, l.Wire.OpenConnections)
	c(descConnsRefused, l.Wire.Refused)
	c(descIdleClosed, l.Wire.IdleClosed)
	c(descReqTimeouts, l.Wire.RequestTimeouts)
	c(descSlowReaders, l.Wire.SlowReaders)
	c(descProtoErrors, l.Wire.ProtocolErrors)
	c(descPanics, l.Wire.Panics)
	g(descFetchMemory, l.Wire.FetchMemoryBytes)
	c(descFetchWaits, l.Wire.BudgetWaits)
	c(descPartsRefused, l.PartitionsRefused)
	c(descAutoThrottled, l.AutoCreateThrottled)
}

func collectCore(ch chan<- prometheus.Metric, cs cluster.CoreSnapshot) {
	core := strconv.Itoa(int(cs.Core))
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), core)
	}
	gauge := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), core)
	}
	ch <- prometheus.MustNewConstMetric(descCoreInfo, prometheus.GaugeValue, 1, core, strconv.Itoa(cs.CPU))
	for api, n := range cs.Requests {
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n), core, api)
	}
	counter(descBytesIn, cs.BytesIn)
	counter(descBytesOut, cs.BytesOut)
	ch <- prometheus.MustNewConstMetric(descBusy, prometheus.CounterValue, cs.Busy.Seconds(), core)
	r := cs.Reactor
	counter(descSent, r.Sent)
	counter(descReceived, r.Received)
	counter(descOverflow, r.Overflowed)
	gauge(descPending, r.OverflowPending)
	gauge(descInboxMax, r.InboxDepthMax)
	counter(descWakeups, r.Services)
	counter(descStalls, r.Stalls)
	counter(descExpStalls, r.ExpectedStalls)
	gauge(descCoreParts, uint64(len(cs.Partitions)))
	for _, op := range []struct {
		name string
		n    uint64
		h    *dma.Histogram
	}{{"read", cs.IO.Reads, &cs.IO.Read}, {"write", cs.IO.Writes, &cs.IO.Write}, {"sync", cs.IO.Syncs, &cs.IO.Sync}} {
		ch <- prometheus.MustNewConstMetric(descIOOps, prometheus.CounterValue, float64(op.n), core, op.name)
		ch <- histogram(descIOLatency, op.h, core, op.name)
	}
	for _, p := range cs.Partitions {
		lv := []string{p.Topic, strconv.Itoa(int(p.Partition)), core}
		ch <- prometheus.MustNewConstMetric(descRecordsIn, prometheus.CounterValue, float64(p.RecordsIn), lv...)
		ch <- prometheus.MustNewConstMetric(descPBytesIn, prometheus.CounterValue, float64(p.BytesIn), lv...)
		ch <- prometheus.MustNewConstMetric(descRecordsOut, prometheus.CounterValue, float64(p.RecordsOut), lv...)
		ch <- prometheus.MustNewConstMetric(descPBytesOut, prometheus.CounterValue, float64(p.BytesOut), lv...)
		ch <- prometheus.MustNewConstMetric(descEndOffset, prometheus.GaugeValue, float64(p.EndOffset), lv...)
		ch <- prometheus.MustNewConstMetric(descHW, prometheus.GaugeValue, float64(p.HighWatermark), lv...)
		ch <- prometheus.MustNewConstMetric(descStart, prometheus.GaugeValue, float64(p.LogStartOffset), lv...)
		ch <- prometheus.MustNewConstMetric(descSize, prometheus.GaugeValue, float64(p.SizeBytes), lv...)
	}
}

// histogram turns a core's fixed-bucket histogram into Prometheus's
// cumulative form.
func histogram(d *prometheus.Desc, h *dma.Histogram, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(dma.LatencyBounds))
	var cum uint64
	for i, le := range dma.LatencyBounds {
		cum += h.Counts[i]
		buckets[le.Seconds()] = cum
	}
	cum += h.Counts[len(dma.LatencyBounds)]
	return prometheus.MustNewConstHistogram(d, cum, h.Sum.Seconds(), buckets, labels...)
}
