package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/strand-io/strand/cluster"
	"github.com/strand-io/strand/cluster/adminapi"
	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
	"github.com/strand-io/strand/wire"
	"gopkg.in/yaml.v3"
)

// serveConfig is the YAML config file's shape; flags given on the command
// line win over it.
type serveConfig struct {
	DataDir           string `yaml:"data_dir"`
	Listen            string `yaml:"listen"`
	Advertise         string `yaml:"advertise"`
	Rack              string `yaml:"rack"`
	Cores             string `yaml:"cores"`
	NodeID            int32  `yaml:"node_id"`
	AutoCreateTopics  *bool  `yaml:"auto_create_topics"`
	DefaultPartitions int32  `yaml:"default_partitions"`
	MaxRequestBytes   int    `yaml:"max_request_bytes"`
	LogLevel          string `yaml:"log_level"`
	// Limits: each key is its flag's name with underscores, and takes the
	// flag's syntax ("10m", "1048576").
	Limits map[string]string `yaml:"limits"`
}

// limitFlags are the flags the config file's limits section may set.
var limitFlags = []string{"max-connections", "max-connections-per-ip", "max-inflight-requests",
	"max-connection-buffered-bytes", "idle-timeout", "request-timeout", "fetch-max-bytes",
	"max-partition-fetch-bytes", "fetch-memory-bytes"}

// applyLimitsConfig sets the limit flags from the config file's limits
// section, except those given on the command line.
func applyLimitsConfig(path string, fs *flag.FlagSet, set map[string]bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var c serveConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for key, v := range c.Limits {
		name := strings.ReplaceAll(key, "_", "-")
		if !slices.Contains(limitFlags, name) {
			return fmt.Errorf("config %s: unknown limit %q (known: %s)", path, key, strings.ReplaceAll(strings.Join(limitFlags, ", "), "-", "_"))
		}
		if set[name] {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("config %s: limits.%s: %w", path, key, err)
		}
	}
	return nil
}

func serve(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfgFile := fs.String("config", "", "YAML config file (keys: data_dir, listen, advertise, rack, cores, node_id, auto_create_topics, default_partitions, max_request_bytes, log_level, and limits: a map of the limit flags' names with underscores)")
	dataDir := fs.String("data-dir", "./strand-data", "directory for partition logs and metadata")
	listen := fs.String("listen", "127.0.0.1:9092", "address to accept Kafka clients on")
	advertise := fs.String("advertise", "", "host:port clients are told to connect to (default: the listen address)")
	cores := fs.String("cores", "", "CPUs to run on, e.g. 0-1 or 0,2 (default: every CPU this process may use)")
	nodeID := fs.Int("node-id", 0, "this broker's node id")
	rack := fs.String("rack", "", "this broker's rack or zone (Kafka's broker.rack): shown to clients in Metadata, and new partitions' replicas are spread over racks")
	raftListen := fs.String("raft-listen", "", "host:port of this broker's metadata Raft replica, for its peers (a cluster member; with --initial-cluster the default is its own entry)")
	initialCluster := fs.String("initial-cluster", "", "bootstrap a cluster: every initial voter as node-id=host:port of its Raft replica, comma-separated, 1, 3 or 5 of them, the same on each (as etcd's)")
	join := fs.String("join", "", "Kafka host:port of a running broker: join its cluster as a non-voting metadata member (needs --node-id and --raft-listen)")
	clusterID := fs.String("cluster-id", "", "16 hex digits: the cluster this data dir must belong to (default: derived from --initial-cluster, learnt from --join, or random for a single broker)")
	metaTimeout := fs.Duration("metadata-timeout", 10*time.Second, "how long an admin request waits for its metadata change to be applied; past it (no metadata quorum) it is answered REQUEST_TIMED_OUT")
	metaFree := fs.Int64("metadata-free-bytes", 1<<20, "metadata changes are refused (KAFKA_STORAGE_ERROR) while the data dir's disk has less free space than this: the metadata log must never find it full")
	maxBrokers := fs.Int("max-brokers", 64, "members of the metadata group (voters and non-voting) at most; a --join past it is refused with POLICY_VIOLATION")
	replicaLag := fs.Duration("replica-lag-time-max", 30*time.Second, "a partition's leader drops from the in-sync set a follower that has not caught up for this long (Kafka's replica.lag.time.max.ms); until then acks=all produces wait for it")
	catchUpRate := fs.Int64("replica-catchup-bytes-per-sec", 0, "bytes per second this broker's followers fetch, together, for replicas outside the in-sync set (a reassignment's new replica, a broker catching up after an absence), so catching up does not starve producers; 0: unlimited (Kafka's follower.replication.throttled.rate)")
	autoLeaders := fs.Bool("auto-leader-rebalance", true, "the controller gives a returned broker back leadership of the partitions it is the preferred (first) replica of, once it is back in their in-sync sets (Kafka's auto.leader.rebalance.enable)")
	leaderDelay := fs.Duration("leader-rebalance-delay", 5*time.Second, "how long a broker must have been unfenced before --auto-leader-rebalance gives it its partitions back")
	brokerLease := fs.Duration("broker-lease", 3*time.Second, "the controller fences a broker (its partitions become leaderless) that has not answered its liveness probes for this long")
	autoCreate := fs.Bool("auto-create-topics", true, "create unknown topics on first produce or metadata request")
	defParts := fs.Int("default-partitions", 1, "partitions of auto-created topics")
	defRF := fs.Int("default-replication-factor", 1, "replicas of each partition of auto-created topics and of CreateTopics asking for -1 (Kafka's default.replication.factor); more than the live brokers is refused with INVALID_REPLICATION_FACTOR")
	maxReq := fs.Int("max-request-bytes", 100<<20, "largest request frame accepted (larger ones close the connection), the most a produced batch may decompress to, and the most a client may send while the starting broker holds it (past it, it is reset)")
	maxConns := fs.Int("max-connections", 0, "open client connections at most; new ones past it are closed (0: the descriptors --reserved-fds keeps from partitions, less 576 for accept bursts and the broker's own files, at least half of them; negative: no cap)")
	maxConnsIP := fs.Int("max-connections-per-ip", 0, "open connections from one address at most (0: no per-address cap)")
	maxInflight := fs.Int("max-inflight-requests", 1024, "requests one connection may have awaiting a response; past it the broker stops reading that connection")
	maxBuffered := fs.Int("max-connection-buffered-bytes", wire.DefaultMaxConnectionBufferedBytes, "unsent response bytes one connection may hold; past it the broker stops reading it until the client reads")
	idle := fs.Duration("idle-timeout", wire.DefaultIdleTimeout, "close connections idle this long (Kafka's connections.max.idle.ms); 0 keeps the default, negative never closes")
	reqTimeout := fs.Duration("request-timeout", wire.DefaultRequestTimeout, "close a connection whose started request frame does not complete within this; negative never")
	fetchMax := fs.Int("fetch-max-bytes", wire.DefaultFetchMaxBytes, "record bytes in one fetch response at most, whatever the request asks (Kafka's fetch.max.bytes)")
	partFetchMax := fs.Int("max-partition-fetch-bytes", wire.DefaultMaxPartitionFetchBytes, "record bytes of one partition in a fetch response at most, below the request's own maximum (one partition read is one disk read)")
	fetchMem := fs.Int64("fetch-memory-bytes", wire.DefaultFetchMemoryBytes, "broker-wide budget for fetched records held in memory; fetches read less or wait when it is spent")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	maxParts := fs.Int("max-partitions", 10000, "partitions the broker may hold, all topics together; CreateTopics/CreatePartitions past it are refused (POLICY_VIOLATION); -1: only the descriptor budget")
	reservedFDs := fs.Int("reserved-fds", 0, "file descriptors kept for connections and everything but partitions; the rest of the limit bounds the partitions (0: a fifth of the limit, at least 256)")
	autoPerReq := fs.Int("auto-create-max-per-request", 16, "topics one Metadata request may create implicitly; the rest are answered LEADER_NOT_AVAILABLE; -1: no bound")
	adminListen := fs.String("admin-listen", "127.0.0.1:9644", "address of the admin HTTP API (/v1/, /metrics, /debug/pprof/); empty disables it")
	adminTimeout := fs.Duration("admin-snapshot-timeout", 2*time.Second, "how long an admin API request or metrics scrape waits for every core to report its state; past it: 503, or a failed scrape")
	autoPerSec := fs.Int("auto-create-per-second", 32, "topics created implicitly (Metadata, Produce) per second, broker-wide; -1: no bound")
	drainTimeout := fs.Duration("drain-timeout", 10*time.Second, "on SIGTERM, how long requests in flight may take to finish before the logs close anyway")
	stallThreshold := fs.Duration("stall-threshold", reactor.DefaultStallThreshold, "warn when one reactor callback holds its core longer than this (start-up and shutdown work excepted)")
	diskReserve := fs.Int64("disk-reserve-bytes", defaultDiskReserveBytes, "free space produce never takes, kept for metadata writes, topic deletion and a clean shutdown on a full disk")
	segFiles := fs.Int("segment-files-per-core", 256, "sealed segment files each core keeps open for reads (the rest are reopened on demand)")
	cleanerBytes := fs.Int64("cleaner-bytes-per-round", 1<<20, "log each core's cleaner reads per round for its compacted partitions (cleanup.policy=compact); a pass spans as many rounds as it needs")
	cleanerInterval := fs.Duration("cleaner-interval", 100*time.Millisecond, "time between a core's cleaning rounds")
	autoRebalance := fs.Bool("auto-rebalance", false, "move partitions between cores on their own, every --auto-rebalance-interval, when that lowers the hottest core's load by --rebalance-margin (one move a round; a moved partition stays a --load-window)")
	autoRebalanceEvery := fs.Duration("auto-rebalance-interval", cluster.DefaultAutoRebalanceInterval, "time between automatic rebalances (--auto-rebalance)")
	rebalanceMargin := fs.Float64("rebalance-margin", cluster.DefaultRebalanceMargin, "a rebalance moves a partition only when that lowers the hottest core's load (bytes in+out per second) by at least this fraction of it")
	rebalanceMaxMoves := fs.Int("rebalance-max-moves", cluster.DefaultRebalanceMaxMoves, "moves one requested rebalance makes at most; past it, it stops (logged) and can be run again")
	rebalanceMinBytes := fs.Float64("rebalance-min-bytes-per-sec", cluster.DefaultRebalanceMinBytesPerSec, "a rebalance moves nothing while the hottest core's load (bytes in+out per second) is below this")
	loadWindow := fs.Duration("load-window", cluster.DefaultLoadWindow, "how far back the measured per-core and per-partition load looks (GET /v1/placement, rebalancing, new partitions' cores)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *cfgFile != "" {
		if err := applyConfigFile(*cfgFile, set, dataDir, listen, advertise, rack, cores, nodeID, autoCreate, defParts, maxReq, level); err != nil {
			fmt.Fprintln(os.Stderr, "strand:", err)
			return 2
		}
		if err := applyLimitsConfig(*cfgFile, fs, set); err != nil {
			fmt.Fprintln(os.Stderr, "strand:", err)
			return 2
		}
	}
	logger, err := newLogger(*level)
	if err != nil {
		fmt.Fprintln(os.Stderr, "strand:", err)
		return 2
	}
	cpus, err := parseCPUList(*cores)
	if err != nil {
		fmt.Fprintln(os.Stderr, "strand: --cores:", err)
		return 2
	}
	cfg := cluster.Config{
		DataDir: *dataDir, Listen: *listen, NodeID: int32(*nodeID), CPUs: cpus,
		// serve exits right after Close: the port stays bound until then.
		KeepPortUntilExit: true,
		// Without --node-id (or node_id in the file) the data dir's id
		// (cluster.json) is kept, so a restart needs only --data-dir.
		NodeIDExplicit:   set["node-id"] || *nodeID != 0,
		AutoCreateTopics: *autoCreate, DefaultPartitions: int32(*defParts), MaxRequestBytes: *maxReq,
		DefaultReplicationFactor: int16(*defRF),
		MaxInflightRequests:      *maxInflight,
		Limits: wire.Limits{
			MaxConnections: *maxConns, MaxConnectionsPerIP: *maxConnsIP, MaxConnectionBufferedBytes: *maxBuffered,
			IdleTimeout: *idle, RequestTimeout: *reqTimeout,
			FetchMaxBytes: *fetchMax, MaxPartitionFetchBytes: *partFetchMax, FetchMemoryBytes: *fetchMem,
		},
		Log: shard.Config{Preallocate: true, DiskReserveBytes: *diskReserve}, Logger: logger, StallThreshold: *stallThreshold,
		DrainTimeout:  *drainTimeout,
		MaxPartitions: *maxParts, ReservedFDs: *reservedFDs,
		AutoCreateMaxPerRequest: *autoPerReq, AutoCreatePerSecond: *autoPerSec,
		SegmentFilesPerCore:  *segFiles,
		CleanerBytesPerRound: *cleanerBytes, CleanerInterval: *cleanerInterval,
		StaticConfigs: staticConfigs(set),
		AutoRebalance: *autoRebalance, AutoRebalanceInterval: *autoRebalanceEvery,
		RebalanceMargin: *rebalanceMargin, LoadWindow: *loadWindow,
		RebalanceMaxMoves: *rebalanceMaxMoves, RebalanceMinBytesPerSec: *rebalanceMinBytes,
	}
	if *autoRebalanceEvery <= 0 || *loadWindow <= 0 || *rebalanceMargin <= 0 || *rebalanceMargin >= 1 ||
		*rebalanceMaxMoves <= 0 || *rebalanceMinBytes <= 0 {
		fmt.Fprintln(os.Stderr, "strand: --auto-rebalance-interval, --load-window, --rebalance-max-moves and --rebalance-min-bytes-per-sec must be positive, --rebalance-margin between 0 and 1")
		return 2
	}
	if cfg.InitialCluster, err = cluster.ParseInitialCluster(*initialCluster); err != nil {
		fmt.Fprintln(os.Stderr, "strand:", err)
		return 2
	}
	cfg.RaftListen, cfg.Join, cfg.BrokerLease = *raftListen, *join, *brokerLease
	cfg.ReplicaLagTimeMax = *replicaLag
	cfg.ReplicaCatchUpBytesPerSec = *catchUpRate
	cfg.MetadataTimeout, cfg.MetadataFreeBytes, cfg.MaxBrokers = *metaTimeout, *metaFree, *maxBrokers
	if *metaTimeout <= 0 || *metaFree <= 0 || *maxBrokers <= 0 {
		fmt.Fprintln(os.Stderr, "strand: --metadata-timeout, --metadata-free-bytes and --max-brokers must be positive")
		return 2
	}
	if *clusterID != "" {
		if cfg.ClusterID, err = strconv.ParseUint(*clusterID, 16, 64); err != nil || cfg.ClusterID == 0 {
			fmt.Fprintf(os.Stderr, "strand: --cluster-id %q: want 16 hex digits, not all zero\n", *clusterID)
			return 2
		}
	}
	if *catchUpRate < 0 {
		fmt.Fprintln(os.Stderr, "strand: --replica-catchup-bytes-per-sec must not be negative")
		return 2
	}
	if *replicaLag <= 0 {
		fmt.Fprintln(os.Stderr, "strand: --replica-lag-time-max must be positive")
		return 2
	}
	cfg.LeaderRebalanceDelay = *leaderDelay
	if !*autoLeaders {
		cfg.LeaderRebalanceDelay = -1
	}
	if *leaderDelay <= 0 {
		fmt.Fprintln(os.Stderr, "strand: --leader-rebalance-delay must be positive")
		return 2
	}
	if *defRF < 1 || *defRF > 64 {
		fmt.Fprintln(os.Stderr, "strand: --default-replication-factor must be between 1 and 64")
		return 2
	}
	if *brokerLease <= 0 {
		fmt.Fprintln(os.Stderr, "strand: --broker-lease must be positive")
		return 2
	}
	if *cleanerBytes <= 0 || *cleanerInterval <= 0 {
		fmt.Fprintln(os.Stderr, "strand: --cleaner-bytes-per-round and --cleaner-interval must be positive")
		return 2
	}
	if *drainTimeout <= 0 {
		fmt.Fprintln(os.Stderr, "strand: --drain-timeout must be positive")
		return 2
	}
	if *stallThreshold <= 0 {
		fmt.Fprintln(os.Stderr, "strand: --stall-threshold must be positive")
		return 2
	}
	if len(*rack) > metadata.RackLenMax || strings.ContainsFunc(*rack, unicode.IsControl) {
		fmt.Fprintf(os.Stderr, "strand: --rack %q: want a name of at most %d bytes without control characters\n", *rack, metadata.RackLenMax)
		return 2
	}
	cfg.Rack = *rack
	if *advertise != "" {
		host, port, err := net.SplitHostPort(*advertise)
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			fmt.Fprintf(os.Stderr, "strand: --advertise %q: want host:port\n", *advertise)
			return 2
		}
		cfg.AdvertiseHost, cfg.AdvertisePort = host, int32(p)
	}
	// The admin API comes up first, so an orchestrator sees the broker
	// live (and not ready) while logs are recovered.
	var admin *adminapi.Server
	if *adminListen != "" {
		if admin, err = adminapi.Listen(adminapi.Config{Listen: *adminListen, Logger: logger, SnapshotTimeout: *adminTimeout}); err != nil {
			logger.Error("admin API failed to start", "err", err, "hint", "free the port or pass --admin-listen '' to disable it")
			return 1
		}
	}
	node, err := cluster.Start(cfg)
	if err != nil {
		logger.Error("broker failed to start", "err", err)
		if admin != nil {
			admin.Close(context.Background())
		}
		return 1
	}
	if admin != nil {
		admin.SetBroker(node)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	logger.Info("shutting down: finishing in-flight requests and syncing logs", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), *drainTimeout+30*time.Second)
	defer cancel()
	if admin != nil {
		admin.Drain()
	}
	err = node.Close(ctx)
	if admin != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		admin.Close(actx)
		acancel()
	}
	if err != nil {
		logger.Error("unclean shutdown", "err", err)
		return 1
	}
	logger.Info("stopped cleanly")
	return 0
}

// defaultDiskReserveBytes covers what must still be written on a full
// disk: metadata.json (about 100 bytes a partition, twice during its
// rename), and at shutdown each partition's last index entries and
// producer-state snapshot (a few KiB each, so some 30 MiB for 6,000).
const defaultDiskReserveBytes = 64 << 20

// brokerConfigNames maps serve's flags (and config-file keys) onto the
// Kafka broker configs they set, for DescribeConfigs' STATIC_BROKER_CONFIG.
var brokerConfigNames = map[string][]string{
	"data-dir":                   {"log.dirs"},
	"listen":                     {"listeners"},
	"advertise":                  {"advertised.listeners"},
	"node-id":                    {"broker.id", "node.id"},
	"rack":                       {"broker.rack"},
	"auto-create-topics":         {"auto.create.topics.enable"},
	"default-partitions":         {"num.partitions"},
	"default-replication-factor": {"default.replication.factor"},
	"max-request-bytes":          {"socket.request.max.bytes"},
}

func staticConfigs(set map[string]bool) []string {
	var out []string
	for flag, names := range brokerConfigNames {
		if set[flag] {
			out = append(out, names...)
		}
	}
	return out
}

func applyConfigFile(path string, set map[string]bool, dataDir, listen, advertise, rack, cores *string, nodeID *int, autoCreate *bool, defParts, maxReq *int, level *string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var c serveConfig
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	str := func(name string, dst *string, v string) {
		if !set[name] && v != "" {
			*dst = v
			set[name] = true
		}
	}
	str("data-dir", dataDir, c.DataDir)
	str("listen", listen, c.Listen)
	str("advertise", advertise, c.Advertise)
	str("rack", rack, c.Rack)
	str("cores", cores, c.Cores)
	str("log-level", level, c.LogLevel)
	if !set["node-id"] && c.NodeID != 0 {
		*nodeID, set["node-id"] = int(c.NodeID), true
	}
	if !set["auto-create-topics"] && c.AutoCreateTopics != nil {
		*autoCreate, set["auto-create-topics"] = *c.AutoCreateTopics, true
	}
	if !set["default-partitions"] && c.DefaultPartitions > 0 {
		*defParts, set["default-partitions"] = int(c.DefaultPartitions), true
	}
	if !set["max-request-bytes"] && c.MaxRequestBytes > 0 {
		*maxReq, set["max-request-bytes"] = c.MaxRequestBytes, true
	}
	return nil
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// parseCPUList reads "0-3,6" style lists.
func parseCPUList(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("bad CPU %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad CPU range %q", part)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("empty CPU list")
	}
	return out, nil
}
