package perf

import (
	"os"
	"runtime"
	"strings"
	"time"
)

// result assembles the Result of a finished run. Every goroutine that
// wrote the state has stopped, except kgo callbacks for records that were
// aborted, which only touch error counters.
func (r *run) result(started time.Time) *Result {
	w := r.w
	end := time.Duration(r.end.Load())
	window := (end - r.measureStart).Seconds()
	host, _ := os.Hostname()
	res := &Result{
		Schema: resultSchema, Tool: "strand perf", Workload: *w, StartedAt: started,
		Brokers: strings.Join(r.brokers, ","), Interrupted: r.interrupted,
		Host: HostInfo{Hostname: host, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()},
		Settings: Settings{
			TargetRate: r.rate, WarmupSeconds: r.warmup.Seconds(), DurationSeconds: r.duration.Seconds(),
			Acks: "all", Idempotent: w.Idempotent, LingerMs: w.LingerMs,
			Producers: len(r.producers), Consumers: len(r.consumers), MessageBytes: r.payloads.size, Topics: r.topics,
		},
		MeasuredSeconds: window,
	}
	pubH, pubMax := mergeLatency(r.producerLatencies(), true)
	res.Publish = PublishStats{
		Messages: r.pubMsgs.Load(), Bytes: r.pubBytes.Load(),
		MsgsPerSec: perSec(r.pubMsgs.Load(), window), MBPerSec: perSec(r.pubBytes.Load(), window) / 1e6,
		Errors: r.pubErrs.n.Load(), FirstError: r.pubErrs.firstText(), MissedSends: r.missedSends(),
		Latency: percentilesOf(pubH, pubMax), LatencyCurve: curveOf(pubH, pubMax),
	}
	if r.rate > 0 {
		var lags []*latencyRecorder
		for _, p := range r.producers {
			lags = append(lags, p.lag)
		}
		lagH, lagMax := mergeLatency(lags, true)
		pl := percentilesOf(lagH, lagMax)
		res.Publish.PacingLag = &pl
	}
	if len(r.consumers) > 0 {
		e2eH, e2eMax := mergeLatency(r.consumerLatencies(), true)
		res.Consume = &ConsumeStats{
			Messages: r.conMsgs.Load(), Bytes: r.conBytes.Load(),
			MsgsPerSec: perSec(r.conMsgs.Load(), window), MBPerSec: perSec(r.conBytes.Load(), window) / 1e6,
			Errors: r.conErrs.n.Load(), FirstError: r.conErrs.firstText(),
			EndToEnd: percentilesOf(e2eH, e2eMax), EndToEndCurve: curveOf(e2eH, e2eMax),
		}
	}
	res.Backlog = r.backlogResult()
	if r.proc != nil {
		res.Broker = r.brokerResult(end)
	}
	res.Series = r.seriesResult()
	return res
}

func (r *run) backlogResult() *BacklogStats {
	b := r.backlog
	if b == nil {
		return nil
	}
	out := &BacklogStats{TargetBytes: b.target, ProducersDuringDrain: r.rate > 0}
	ph := b.phase.Load()
	switch {
	case ph == backlogBuilding:
		out.BuiltBytes = r.ackedBytes.Load() - b.bytesAtPause
		out.BuildSeconds = (time.Duration(r.end.Load()) - b.pausedAt).Seconds()
		return out
	case ph == backlogNone:
		return out
	}
	out.BuiltBytes = b.bytesAtDrain - b.bytesAtPause
	out.BuildSeconds = (b.drainStart - b.pausedAt).Seconds()
	for s := range b.readAtDrain {
		out.ReadWhileBuilding += b.readAtDrain[s] - b.readAtPause[s]
		out.BehindAtDrain += b.drainGoal[s] - b.readAtDrain[s]
	}
	if ph != backlogDone {
		return out
	}
	out.Drained = true
	out.DrainSeconds = (b.drainEnd - b.drainStart).Seconds()
	for s := range b.readAtEnd {
		out.DrainMessages += b.readAtEnd[s] - b.readAtDrain[s]
	}
	out.DrainMsgsPerSec = perSec(out.DrainMessages, out.DrainSeconds)
	out.DrainMBPerSec = out.DrainMsgsPerSec * float64(r.payloads.size) / 1e6
	return out
}

func (r *run) brokerResult(end time.Duration) *BrokerStats {
	out := &BrokerStats{Source: r.proc.label}
	if r.procErr != nil {
		out.Error = r.procErr.Error()
		return out
	}
	window := (end - r.measureStart).Seconds()
	out.CPUSeconds = (r.cpuEnd.cpu - r.cpuStart.cpu).Seconds()
	out.CPUCores = perSec(int64(out.CPUSeconds*1e6), window) / 1e6
	out.RSSEndBytes = r.cpuEnd.rssBytes
	first, last := r.series.slot(r.measureStart), r.series.slot(end-1)
	out.RSSMaxBytes = max(r.cpuStart.rssBytes, r.cpuEnd.rssBytes)
	for i := first; i <= last; i++ {
		out.RSSMaxBytes = max(out.RSSMaxBytes, r.series.rss[i])
	}
	return out
}

// seriesResult converts the per-second counters, dropping trailing seconds
// in which nothing happened.
func (r *run) seriesResult() []SecondStats {
	s := r.series
	last := 0
	end := time.Duration(r.end.Load())
	for i := range s.errs {
		if s.pubMsgs[i].Load()+s.conMsgs[i].Load()+s.errs[i].Load() > 0 || time.Duration(i)*time.Second < end {
			last = i
		}
	}
	out := make([]SecondStats, 0, last+1)
	for i := 0; i <= last; i++ {
		out = append(out, SecondStats{
			Second: i, Phase: r.phaseAt(time.Duration(i) * time.Second),
			PublishMsgs: s.pubMsgs[i].Load(), PublishBytes: s.pubBytes[i].Load(),
			ConsumeMsgs: s.conMsgs[i].Load(), ConsumeBytes: s.conBytes[i].Load(), Errors: s.errs[i].Load(),
			BrokerCPUCores: round3(s.cpuCores[i]), BrokerRSSBytes: s.rss[i],
		})
	}
	return out
}

func perSec(n int64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return round3(float64(n) / seconds)
}

func round3(v float64) float64 {
	return float64(int64(v*1000+0.5)) / 1000
}
