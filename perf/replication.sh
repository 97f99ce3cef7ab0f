#!/usr/bin/env bash
# Replication factor 3 against 1 on the same three brokers (issue 13's
# figures, docs/PERFORMANCE.md "Replication"). Starts three strand brokers
# on 127.0.0.1 (data dirs under $DIR, ext4 /tmp on the reference machine)
# and runs six `strand perf` workloads back to back against them, RF 1 then
# RF 3 at each of: max rate, $RATE msg/s (latency) and $CPU_RATE msg/s (CPU
# per GB at one load); 1 KiB messages, 12 partitions, 4 producers,
# acks=all, produce only. For each run it sums utime+stime of the three
# broker processes (/proc/PID/stat) from before the run to after it and
# divides by the bytes acknowledged in the whole run (warm-up included, from
# the per-second series), and prints one markdown table with the ratios.
#
#   perf/replication.sh                    # builds bin/strand first
#   DURATION=60s WARMUP=10s OUT=/tmp/x perf/replication.sh
#
# Needs jq. Every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-30s}
WARMUP=${WARMUP:-5s}
RATE=${RATE:-10000}
# CPU per GB at max rate favours RF 1 (bigger batches at its higher rate);
# at one offered rate both do the same work per message but the copies.
CPU_RATE=${CPU_RATE:-50000}
DIR=${DIR:-/tmp/strand-repl-perf}
OUT=${OUT:-perf-results/replication-$(date -u +%Y%m%dT%H%M%SZ)}
BIN=${BIN:-bin/strand}
BASE_PORT=${BASE_PORT:-19300}
export GOWORK=off

if [[ -z "${NO_BUILD:-}" ]]; then
	go build -ldflags=-checklinkname=0 -o bin/strand ./cmd/strand
fi
mkdir -p "$OUT"
rm -rf "$DIR"

pids=()
stop() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$DIR"
}
trap stop EXIT

# Kafka ports BASE..BASE+2, Raft BASE+10.., admin API BASE+20...
initial="" brokers=""
for i in 1 2 3; do
	initial+="${initial:+,}$i=127.0.0.1:$((BASE_PORT + 10 + i))"
	brokers+="${brokers:+,}127.0.0.1:$((BASE_PORT + i))"
done
for i in 1 2 3; do
	mkdir -p "$DIR/$i"
	"$BIN" serve --data-dir "$DIR/$i" --listen "127.0.0.1:$((BASE_PORT + i))" \
		--admin-listen "127.0.0.1:$((BASE_PORT + 20 + i))" --node-id "$i" --initial-cluster "$initial" \
		--log-level warn 2>"$OUT/broker-$i.log" &
	pids+=($!)
done
for i in 1 2 3; do # ready once the Kafka port takes connections
	for _ in $(seq 600); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$((BASE_PORT + i))") 2>/dev/null; then break; fi
		sleep 0.1
	done
done

cpu() { # utime+stime of the brokers, in clock ticks
	local sum=0 f
	for pid in "${pids[@]}"; do
		f=$(sed 's/.*) //' "/proc/$pid/stat")
		read -r -a a <<<"$f"
		sum=$((sum + a[11] + a[12]))
	done
	echo "$sum"
}

workload() { # NAME RF RATE
	cat >"$OUT/$1.yaml" <<-EOF
		name: $1
		topics: 1
		partitionsPerTopic: 12
		messageSize: 1024
		keyDistributor: NO_KEY
		subscriptionsPerTopic: 0
		producersPerTopic: 4
		producerRate: $3
		replicationFactor: $2
		lingerMs: 1
		consumerBacklogSizeGB: 0
		testDurationMinutes: 1
		warmupDurationMinutes: 1
	EOF
}

tck=$(getconf CLK_TCK)
: >"$OUT/runs.tsv"
for run in max:0 fixed:$RATE fixed:$CPU_RATE; do
	for rf in 1 3; do
		name="repl-${run%%:*}${run#*:}-rf$rf"
		workload "$name" "$rf" "${run#*:}"
		load=$(cut -d' ' -f1 /proc/loadavg)
		before=$(cpu)
		"$BIN" perf run "$OUT/$name.yaml" --brokers "$brokers" --out "$OUT/$name" --warmup "$WARMUP" --duration "$DURATION"
		after=$(cpu)
		# name rf offered load msg/s MB/s p50ms p99ms cpu_s acked_GB errors
		jq -r --argjson cpu "$((after - before))" --argjson tck "$tck" --arg rf "$rf" --arg load "$load" --arg name "$name" '
			[$name, $rf,
			 (if .settings.target_rate_msgs_per_sec == 0 then "max" else (.settings.target_rate_msgs_per_sec | tostring) end),
			 $load, .publish.msgs_per_sec, .publish.mb_per_sec,
			 .publish.latency.p50_us / 1000, .publish.latency.p99_us / 1000,
			 $cpu / $tck, ([.series[].publish_bytes] | add) / 1e9, .publish.errors] | @tsv
		' "$OUT/$name/result.json" >>"$OUT/runs.tsv"
	done
done

# One row per run, then RF 3 / RF 1 for each pair.
awk -F'\t' '
	BEGIN {
		print "| run | RF | offered msg/s | load before | publish msg/s | MB/s | p50 / p99 ms | broker CPU s (3 brokers) | acked GB | CPU s per acked GB | errors |"
		print "|---|---|---|---|---|---|---|---|---|---|---|"
	}
	{
		cpugb = $9 / $10
		printf "| %s | %s | %s | %s | %.0f | %.1f | %.2f / %.2f | %.1f | %.3f | %.2f | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, cpugb, $11
		key = $3; if ($2 == 1) { r1[key] = $5; p50[key] = $7; p99[key] = $8; c1[key] = cpugb } else {
			ratio[key] = sprintf("| RF 3 / RF 1, offered %s | | | | %.2f | | %.2f / %.2f | | | %.2f | |", key, $5 / r1[key], $7 / p50[key], $8 / p99[key], cpugb / c1[key])
		}
	}
	END { for (k in ratio) print ratio[k] }
' "$OUT/runs.tsv" | tee "$OUT/table.md"
