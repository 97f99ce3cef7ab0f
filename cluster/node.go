package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/strand-io/strand/cluster/group"
	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/cluster/metaraft"
	"github.com/strand-io/strand/dma"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
	"github.com/strand-io/strand/wire"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Config configures a Node.
type Config struct {
	DataDir       string
	Listen        string // host:port
	AdvertiseHost string // default: Listen's host
	AdvertisePort int32  // default: the bound port
	// Rack is this broker's rack (Kafka's broker.rack): registered in the
	// cluster metadata, shown to clients in Metadata and DescribeCluster,
	// and used by placement to spread replicas over racks. "" = none.
	Rack   string
	NodeID int32
	// NodeIDExplicit: NodeID was asked for, so a data dir of another node
	// id is refused; otherwise the data dir's id (cluster.json) is used.
	NodeIDExplicit bool
	// ClusterID, if not zero, is the cluster this broker must belong to: a
	// data dir of another cluster is refused. Zero: the data dir's, or a
	// new random one on its first start.
	ClusterID uint64
	// RaftListen is host:port where this broker's metadata Raft replica
	// listens for its peers; required with InitialCluster or Join.
	RaftListen string
	// InitialCluster maps each initial voter's node id to its Raft address
	// (1, 3 or 5 of them, the same on every one), as etcd's
	// --initial-cluster: it bootstraps a cluster. Without ClusterID, the
	// cluster id is derived from it.
	InitialCluster map[int32]string
	// Join is the Kafka address of a running broker: a new broker asks it
	// to add this one to the metadata group as a non-voting member.
	Join string
	// ReplicaLagTimeMax: a leader drops from the in-sync set a follower
	// that has not caught up with its log end for this long (Kafka's
	// replica.lag.time.max.ms). Until then acks=all produces wait for it.
	ReplicaLagTimeMax time.Duration
	// ReplicaCatchUpBytesPerSec bounds what this broker's followers fetch
	// per second for replicas outside the in-sync set (0: unlimited).
	ReplicaCatchUpBytesPerSec int64
	// BrokerLease: the controller fences a broker that has not answered
	// its liveness probes for this long. Default 3s.
	BrokerLease time.Duration
	// MetadataTimeout bounds one metadata proposal; past it the request
	// is answered REQUEST_TIMED_OUT. Default 10s.
	MetadataTimeout time.Duration
	// MetadataFreeBytes: a metadata change is refused while the data
	// dir's file system has less free space. Default 1 MiB.
	MetadataFreeBytes int64
	// MaxBrokers bounds the members of the metadata group, voters and
	// non-voting together: AddRaftVoter (--join) past it is refused. Any
	// client that learns the cluster id can send AddRaftVoter, and each
	// member costs the leader a replication stream. Default 64.
	MaxBrokers        int
	CPUs              []int
	DefaultPartitions int32 // for auto-created topics and CreateTopics with -1; default 1
	// DefaultReplicationFactor is the replicas of each partition of an
	// auto-created topic, and of CreateTopics with -1 (Kafka's
	// default.replication.factor); default 1. More than the live brokers
	// is refused with INVALID_REPLICATION_FACTOR, as Kafka does.
	DefaultReplicationFactor int16
	// LeaderRebalanceDelay: the controller gives a returned broker back
	// leadership of the partitions it is the preferred leader of once it
	// has been unfenced this long and is in their in-sync sets (Kafka's
	// auto.leader.rebalance.enable). 0: 5 s; negative: never.
	LeaderRebalanceDelay time.Duration
	AutoCreateTopics     bool
	MaxRequestBytes      int
	// MaxInflightRequests and Limits bound what one client can make the
	// protocol edge hold (wire.Config).
	MaxInflightRequests int
	Limits              wire.Limits
	// Log holds broker-wide log settings (buffer sizes, preallocation);
	// topic configs override segment and retention settings.
	Log    shard.Config
	Logger *slog.Logger
	// TickInterval is how often each core gives its logs the time
	// (segment roll by age, retention). Default 1s.
	TickInterval time.Duration
	// Groups sets the group coordinator's timing rules.
	Groups group.Config
	// OffsetsPartitions is the partition count of the internal offsets
	// topic, fixed when it is first created. Default 8.
	OffsetsPartitions int32
	// MaxPartitions bounds the partitions of the broker, all topics
	// together; a CreateTopics or CreatePartitions past it is refused.
	// 0: 10,000; negative: no bound but the descriptor budget.
	MaxPartitions int
	// ReservedFDs is how many of the process's file descriptors are kept
	// for connections and everything but partitions; the rest, divided by
	// the descriptors a partition holds, bounds the partitions. 0: a fifth
	// of the limit, at least 256.
	ReservedFDs int
	// AutoCreateMaxPerRequest bounds the topics one Metadata request may
	// create implicitly. 0: 16; negative: no bound.
	AutoCreateMaxPerRequest int
	// AutoCreatePerSecond bounds the topics created implicitly (Metadata
	// and Produce) per second, broker-wide. 0: 32; negative: no bound.
	AutoCreatePerSecond int
	// StallThreshold: a reactor callback running longer than this is
	// logged as a stall (reactor.DefaultStallThreshold when zero).
	StallThreshold time.Duration
	// DrainTimeout bounds the first step of Close, which lets requests in
	// flight finish with normal answers. Default 10s.
	DrainTimeout time.Duration
	// KeepPortUntilExit leaves the listen port bound when Close returns
	// (clients connecting then wait, and are reset when the process exits):
	// for a process that exits right after Close, so that a restart
	// refuses connections only from its exit, not from the end of Close,
	// to the next process's bind.
	KeepPortUntilExit bool
	// SegmentFilesPerCore bounds the sealed-segment files each core keeps
	// open for reads (shard.FileCache). An open partition holds
	// shard.DescriptorsPerLog more. Default 256.
	SegmentFilesPerCore int
	// CleanerBytesPerRound bounds the log each core's cleaner reads per
	// round, all its compacted partitions together (shard.CleanBudget).
	// Default 1 MiB.
	CleanerBytesPerRound int64
	// CleanerInterval is the time between a core's cleaning rounds.
	// Default 100ms.
	CleanerInterval time.Duration
	// StaticConfigs names, in Kafka's broker config names (log.dirs,
	// num.partitions, ...), the settings given explicitly by flag or
	// config file: DescribeConfigs reports them as STATIC_BROKER_CONFIG,
	// the others as DEFAULT_CONFIG.
	StaticConfigs []string
	// LoadWindow is how far back placement's measured load looks
	// (DefaultLoadWindow when zero); LoadSampleInterval how often the
	// cores' counters are sampled for it (DefaultLoadSampleInterval).
	LoadWindow, LoadSampleInterval time.Duration
	// AutoRebalance moves partitions between cores every
	// AutoRebalanceInterval (DefaultAutoRebalanceInterval) when that lowers
	// the hottest core's load by RebalanceMargin (DefaultRebalanceMargin),
	// as Rebalance does on request.
	AutoRebalance         bool
	AutoRebalanceInterval time.Duration
	RebalanceMargin       float64
	// RebalanceMaxMoves bounds the moves of one requested rebalance
	// (DefaultRebalanceMaxMoves); RebalanceMinBytesPerSec is the hottest
	// core's load below which nothing is moved
	// (DefaultRebalanceMinBytesPerSec).
	RebalanceMaxMoves       int
	RebalanceMinBytesPerSec float64

	hooks testHooks // tests only (hooks.go)
}

// Node is one running broker.
type Node struct {
	cfg    Config
	log    *slog.Logger
	rt     *reactor.Runtime
	srv    *wire.Server
	meta   atomic.Pointer[snapshot]
	cores  []*coreState
	closed atomic.Bool
	// draining: Close has begun; closingLogs: the drain is over and the
	// logs are closing. Coordinators refuse what would not finish (see
	// onCoordinator).
	draining, closingLogs atomic.Bool
	// closeFailures counts partition logs that failed to close (their
	// final index and producer-state writes); Close reports it.
	closeFailures atomic.Int64
	mode          dma.Mode
	// id is this broker's identity (cluster.json); raft replicates the
	// metadata (a group of one voter on a single broker).
	id   identity
	raft *metaraft.Host
	// serving: Start is done with the metadata, and only the controller
	// core changes what the cores read from now on (apply.go).
	serving atomic.Bool
	// ctlSnap is the controller core's newest metadata (see pending):
	// the last applied View it reconciled with (apply.go).
	ctlSnap *snapshot
	// replStates are the replicated partitions' states last sent to their
	// cores (controller core; replicas.go).
	replStates map[string]*topicStates
	// held, failed, proposing and waiters belong to apply.go (controller
	// core); viewKick, watchStop and watchDone to watchViews.
	held      map[string][16]byte
	failed    map[string]failure
	proposing map[string]int
	waiters   []waiter
	viewKick  chan struct{}
	watchStop chan struct{}
	watchDone chan struct{}
	// brokers is the controller's broker liveness tracker (liveness.go).
	brokers *liveness
	// exportMu orders the writes of the metadata.json export.
	exportMu sync.Mutex
	// inflightParts: this broker's partitions of proposals not yet
	// settled, for the budget (controller core).
	inflightParts int
	// unready counts, per topic, committed changes whose partitions are
	// still opening; publish keeps those topics as published (controller).
	unready map[string]int
	// pidNext, pidLimit: the producer id block in use (controller core).
	pidNext, pidLimit int64

	// The deletions in progress per name and the creates waiting for
	// them (controller).
	deleting    map[string]int
	afterDelete map[string][]func()

	// The descriptor limit, the part kept from partitions, and the
	// partitions the rest allows (see overBudget).
	fdLimit, fdReserved uint64
	fdPartitions        int
	budgetLog           rateLog
	// The implicit-create token bucket (controller core).
	autoTokens float64
	autoLast   time.Time
	autoLog    rateLog
	// metaLog rate-limits the log lines of refused metadata changes.
	metaLog rateLog
	// replLog rate-limits replication's warnings (fetch failures).
	replLog rateLog
	// catchUp throttles followers outside the in-sync set (throttle.go).
	catchUp catchUpThrottle
	// lease is this broker's leadership lease (lease.go).
	lease    atomic.Pointer[lease]
	leaseLog rateLog
	// Counters of what those limits refused, for metrics (Limits). Admin
	// paths only, never the data path.
	partsRefused, autoThrottled atomic.Int64
	// live is the load sampler and rebalancer (live.go); moving, the
	// partitions being moved between cores (controller core, move.go).
	live   *live
	moving map[wire.PartitionRef]bool
	// offsetsGate keeps offsets partitions' moves and offset purges apart.
	offsetsGate offsetsGate
}

// startHookBeforeRaft runs in Start once the listener is bound, before the
// Raft log opens (tests hold a start there).
var startHookBeforeRaft = func() {}

// closeHookAfterReactor runs in Close once the reactor has stopped (tests
// connect there).
var closeHookAfterReactor = func() {}

// Start opens the data directory, starts one reactor per core with the
// Kafka protocol server, and opens every partition on the core that owns it.
// It returns once every partition is open and the listener accepts clients.
func Start(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = 1
	}
	if cfg.ReplicaLagTimeMax <= 0 {
		cfg.ReplicaLagTimeMax = defaultReplicaLagTimeMax
	}
	if cfg.DefaultReplicationFactor <= 0 {
		cfg.DefaultReplicationFactor = 1
	}
	if cfg.LeaderRebalanceDelay == 0 {
		cfg.LeaderRebalanceDelay = defaultLeaderRebalanceDelay
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = time.Second
	}
	if cfg.CleanerBytesPerRound <= 0 {
		cfg.CleanerBytesPerRound = 1 << 20
	}
	if cfg.CleanerInterval <= 0 {
		cfg.CleanerInterval = 100 * time.Millisecond
	}
	if cfg.OffsetsPartitions <= 0 {
		cfg.OffsetsPartitions = 8
	}
	if cfg.MaxPartitions == 0 {
		cfg.MaxPartitions = defaultMaxPartitions
	}
	if cfg.AutoCreateMaxPerRequest == 0 {
		cfg.AutoCreateMaxPerRequest = defaultAutoCreateMaxPerRequest
	}
	if cfg.AutoCreatePerSecond == 0 {
		cfg.AutoCreatePerSecond = defaultAutoCreatePerSecond
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = defaultDrainTimeout
	}
	if cfg.SegmentFilesPerCore <= 0 {
		cfg.SegmentFilesPerCore = 256
	}
	if cfg.LoadWindow <= 0 {
		cfg.LoadWindow = DefaultLoadWindow
	}
	if cfg.LoadSampleInterval <= 0 {
		cfg.LoadSampleInterval = DefaultLoadSampleInterval
	}
	if cfg.AutoRebalanceInterval <= 0 {
		cfg.AutoRebalanceInterval = DefaultAutoRebalanceInterval
	}
	if cfg.RebalanceMargin <= 0 {
		cfg.RebalanceMargin = DefaultRebalanceMargin
	}
	if cfg.RebalanceMaxMoves <= 0 {
		cfg.RebalanceMaxMoves = DefaultRebalanceMaxMoves
	}
	if cfg.RebalanceMinBytesPerSec <= 0 {
		cfg.RebalanceMinBytesPerSec = DefaultRebalanceMinBytesPerSec
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 100 << 20 // wire's default, made explicit so DescribeConfigs can report it
	}
	if cfg.BrokerLease <= 0 {
		cfg.BrokerLease = defaultBrokerLease
	}
	if cfg.MetadataTimeout <= 0 {
		cfg.MetadataTimeout = defaultMetadataTimeout
	}
	if cfg.MetadataFreeBytes <= 0 {
		cfg.MetadataFreeBytes = defaultMetadataFreeBytes
	}
	if cfg.MaxBrokers <= 0 {
		cfg.MaxBrokers = defaultMaxBrokers
	}
	n := &Node{cfg: cfg, log: cfg.Logger, unready: map[string]int{}, held: map[string][16]byte{},
		failed: map[string]failure{}, proposing: map[string]int{}, viewKick: make(chan struct{}, 1),
		watchStop: make(chan struct{}), watchDone: make(chan struct{})}
	n.catchUp.rate = cfg.ReplicaCatchUpBytesPerSec
	before, soft, hard, err := raiseFDLimit()
	if err != nil {
		n.log.Warn("raising the file descriptor limit", "err", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, err
	}
	if err := clusterFlags(&cfg); err != nil {
		return nil, err
	}
	n.cfg.ClusterID = cfg.ClusterID
	if n.id, err = loadIdentity(cfg); err != nil {
		return nil, err
	}
	n.cfg.NodeID = n.id.NodeID
	cfg.NodeID = n.id.NodeID
	// The listener is bound first, before the slow steps of a start (the
	// I/O probe, the Raft log, opening every partition): a client of a
	// restarting broker connects at once and is held (HoldClients) until
	// Serve below answers it. Left unbound, its connections would be
	// refused meanwhile, and franz-go does not retry a coordinator lookup
	// that cannot connect: a group member whose heartbeat needs one then
	// ends its session (a rebalance).
	if cfg.Limits.MaxConnections == 0 {
		// Connections live on the descriptors kept back from partitions,
		// so the two budgets never add up past the limit (where gnet's
		// accept would fail with EMFILE and stop its engine).
		cfg.Limits.MaxConnections = wire.ConnectionsFor(int(min(n.fdReserved, 1<<30)))
	}
	var clusterName string
	if n.id.clustered() {
		clusterName = fmt.Sprintf("%016x", n.id.ClusterID)
	}
	n.srv = wire.NewServer(wire.Config{
		NodeID: cfg.NodeID, ClusterID: clusterName, AdvertisedHost: cfg.AdvertiseHost, AdvertisedPort: cfg.AdvertisePort,
		MaxRequestBytes: cfg.MaxRequestBytes, MaxInflightRequests: cfg.MaxInflightRequests,
		AutoCreateMaxPerRequest: cfg.AutoCreateMaxPerRequest,
		Limits:                  cfg.Limits, Logger: cfg.Logger,
	}, n.attach)
	// SO_REUSEADDR: after a crash or a shutdown with clients connected, the
	// broker's side of those connections sits in TIME_WAIT on the listen
	// port for a minute; without it the restarted broker cannot bind.
	rt, err := reactor.Start(reactor.Config{Listen: cfg.Listen, CPUs: cfg.CPUs, Logger: cfg.Logger,
		StallThreshold: cfg.StallThreshold, HoldClients: true, HeldBytesMax: cfg.MaxRequestBytes, KeepPort: true,
		Options: []gnet.Option{gnet.WithReuseAddr(true)}}, n.srv)
	if err != nil {
		return nil, err
	}
	n.rt = rt
	started := false
	defer func() {
		if !started {
			_ = rt.Stop(context.Background()) // resets the clients held so far
			rt.ReleasePort()
		}
	}()
	for _, c := range rt.Cores() {
		n.cores = append(n.cores, &coreState{node: n, core: c, parts: map[wire.PartitionRef]*partition{},
			replStates: map[wire.PartitionRef]*replicaState{}, fetchers: map[int32]*fetcher{},
			queues: map[wire.PartitionRef][]func(next func()){}, readPool: dma.NewPool(readPoolPerClass),
			files: shard.NewFileCache(cfg.SegmentFilesPerCore), clean: shard.NewCleanBudget(cfg.CleanerBytesPerRound)})
	}
	probe, err := dma.ProbeDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if !probe.Direct {
		n.log.Warn("file system refuses O_DIRECT: falling back to buffered I/O + fdatasync (durability unchanged, page cache in the data path)", "dir", cfg.DataDir)
	}
	startHookBeforeRaft()
	if n.raft, err = n.openRaft(cfg); err != nil {
		return nil, err
	}
	defer func() {
		if !started {
			n.raft.Close()
		}
	}()
	// Metadata comes from the Raft group once metadata.json has been
	// imported into it; before that (the first start of a new or of
	// today's data dir, or an import a crash interrupted) from
	// metadata.json, which importMetadata proposes.
	_, impErr := os.Stat(filepath.Join(cfg.DataDir, importedName))
	imported := impErr == nil
	trusted := imported
	if n.id.clustered() {
		// A cluster's metadata is only ever the group's (openRaft read
		// it up to date); a single broker's data dir cannot join one.
		if _, err := os.Stat(filepath.Join(cfg.DataDir, metadataName)); err == nil && !imported {
			n.raft.Close()
			return nil, fmt.Errorf("cluster: data dir %s holds a single broker's %s: it cannot become a member of a cluster", cfg.DataDir, metadataName)
		}
		imported, trusted = true, true
	}
	var snap *snapshot
	if imported {
		snap = snapshotOf(n.raft.View(), n.brokerID())
	} else {
		_, statErr := os.Stat(filepath.Join(cfg.DataDir, metadataName))
		trusted = statErr == nil
		if snap, err = loadMetadata(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	n.meta.Store(snap)
	// The budget needs the core count: each core's file cache is part of it.
	n.fdLimit = soft
	n.fdPartitions = fdPartitions(soft, cfg.ReservedFDs, len(n.cores)*cfg.SegmentFilesPerCore)
	n.fdReserved = soft - uint64(n.fdPartitions*fdsPerPartition)
	n.log.Info("file descriptor limit", "soft_at_start", before, "soft", soft, "hard", hard,
		"partitions_allowed_by_fds", n.fdPartitions, "max_partitions", cfg.MaxPartitions,
		"segment_files_per_core", cfg.SegmentFilesPerCore)
	n.mode = rt.Cores()[0].IO().Mode()
	if !probe.Direct {
		n.mode = dma.ModeBuffered
	}
	if !imported {
		if err := n.importMetadata(snap); err != nil {
			rt.Stop(context.Background())
			return nil, err
		}
		snap = n.meta.Load()
	}
	if err := n.rehome(snap); err != nil {
		rt.Stop(context.Background())
		return nil, err
	}
	if err := n.registerSelf(len(n.cores), false); err != nil {
		rt.Stop(context.Background())
		return nil, err
	}
	if err := n.ensureOffsetsTopic(); err != nil {
		rt.Stop(context.Background())
		return nil, err
	}
	v0 := n.raft.View()
	n.meta.Store(snapshotOf(v0, n.brokerID()))
	n.ctlSnap = n.meta.Load()
	// A single broker's export for operators and tests; never read again
	// once imported.
	if err := n.exportMetadata(); err != nil {
		n.log.Warn("writing the metadata.json export", "err", err)
	}
	// Only metadata read from disk may condemn a directory: without it,
	// every partition would look deleted.
	if removed, err := sweepDataDir(cfg.DataDir, n.ctlSnap, trusted, n.log); err != nil {
		rt.Stop(context.Background())
		return nil, err
	} else if removed > 0 {
		n.log.Info("removed what deletions interrupted by a stop left behind", "dirs", removed)
	}
	if total := partitionCount(n.ctlSnap); total > n.fdPartitions {
		n.log.Warn("the partitions on disk exceed the file descriptor budget: raise the limit (ulimit -n)", "partitions", total, "allowed", n.fdPartitions)
	}
	if err := n.openAll(); err != nil {
		n.Close(context.Background())
		return nil, err
	}
	n.serving.Store(true)
	n.startLive()
	// The replicated partitions take their roles from the metadata they
	// opened with, before any later View reconciles (both on the
	// controller core, in this order).
	n.rt.Post(controller, func(*reactor.Core) {
		if n.replStates == nil {
			n.sendReplicaStates(v0, n.ctlSnap, false)
		}
	})
	go n.watchViews()
	n.kickViews() // what was applied since ctlSnap was taken
	n.brokers = startLiveness(n)
	for _, cs := range n.cores {
		cs := cs
		n.rt.Post(cs.core.ID(), func(*reactor.Core) {
			cs.startTicking()
			cs.startCleaning()
			cs.tickReplicas()
			cs.startCoordinators()
		})
	}
	started = true
	// Clients reach the node only now: before, they would have raced the
	// cores' setup above (n.cores, the logs, the coordinators) or been
	// closed with a FIN, which franz-go does not retry. Until now they are
	// held: connected, their requests wait.
	n.rt.Serve()
	n.log.Info("strand broker ready", "listen", rt.Addr().String(), "cores", len(n.cores),
		"io", n.mode.String(), "align", probe.Align, "data_dir", cfg.DataDir, "node_id", n.id.NodeID,
		"cluster_id", fmt.Sprintf("%016x", n.id.ClusterID), "topics", len(n.meta.Load().names))
	return n, nil
}

// Addr is the address the broker listens on.
func (n *Node) Addr() string { return n.rt.Addr().String() }

// IOMode says how the data directory performs I/O.
func (n *Node) IOMode() dma.Mode { return n.mode }

// exportMetadata writes a single broker's metadata.json export (at start
// and at a clean stop). A cluster member writes none: its metadata is the
// group's, and a metadata.json would make it look like a single broker's.
func (n *Node) exportMetadata() error {
	if n.id.clustered() {
		return nil
	}
	n.exportMu.Lock()
	defer n.exportMu.Unlock()
	return saveMetadata(n.cfg.DataDir, snapshotOf(n.raft.View(), n.brokerID()))
}

// importedName marks a data dir whose metadata.json was imported into
// the Raft group: it is that file, renamed once every command of the
// import was applied. Until it exists, Start imports metadata.json again;
// the commands are the difference between the applied View and the file,
// so an import a crash interrupted only proposes what is missing.
const importedName = metadataName + ".imported"

// importMetadata makes s, the metadata.json of a data dir that has not
// been imported into the Raft group yet (or an empty snapshot), the
// group's metadata: this broker registers with at least the cores its
// partitions are on, and one sequence of commands creates every topic on
// its recorded cores and allocates the producer ids handed out before.
func (n *Node) importMetadata(s *snapshot) error {
	if err := n.registerSelf(max(len(n.cores), coresUsed(s)), true); err != nil {
		return err
	}
	got, err := n.persist(s)
	if err != nil {
		return fmt.Errorf("cluster: importing %s: %w", metadataName, err)
	}
	// A new data dir has no metadata.json: the marker alone says so.
	err = os.Rename(filepath.Join(n.cfg.DataDir, metadataName), filepath.Join(n.cfg.DataDir, importedName))
	if os.IsNotExist(err) {
		err = writeFileDurably(n.cfg.DataDir, importedName, []byte("{}\n"))
	}
	if err != nil {
		return fmt.Errorf("cluster: importing %s: %w", metadataName, err)
	}
	if err := syncDir(n.cfg.DataDir); err != nil {
		return fmt.Errorf("cluster: importing %s: %w", metadataName, err)
	}
	if len(s.names) > 0 {
		n.log.Info("imported metadata.json into the metadata Raft group", "topics", len(s.names), "version", got.version)
	}
	n.meta.Store(got)
	return nil
}

// rehome moves partitions placed on cores this process does not have (it
// was restarted with fewer cores) to the least-loaded cores, leaving every
// other partition where it was. Each move is one command that stands
// alone; a stop half way recomputes the rest at the next start.
func (n *Node) rehome(s *snapshot) error {
	next := rehomed(s, len(n.cores))
	if next == s {
		return nil
	}
	n.log.Warn("partitions re-placed: fewer cores than when they were created", "cores", len(n.cores))
	for _, name := range next.names {
		t, old := next.topics[name], s.topics[name]
		for p := range t.Cores {
			if !old.local(p) || t.Cores[p] == old.Cores[p] {
				continue
			}
			if err := n.propose(&metadata.MoveReplicaCore{Topic: name, Partition: int32(p), Broker: n.brokerID(), Core: metadata.CoreID(t.Cores[p])}); err != nil {
				return fmt.Errorf("cluster: moving %s-%d to core %d: %w", name, p, t.Cores[p], err)
			}
		}
	}
	n.meta.Store(snapshotOf(n.raft.View(), n.brokerID()))
	return nil
}

// offsetsSpreadWait bounds how long a new cluster's broker waits for the
// other initial members before placing the offsets topic without them.
const offsetsSpreadWait = 10 * time.Second

// ensureOffsetsTopic creates the internal offsets topic on first start,
// its partitions over the live brokers. It is compacted by the log
// cleaner; its segments are small so that the cleaner, which cleans only
// sealed segments, gets to commits soon. Brokers of a new cluster race to
// create it; the first wins.
func (n *Node) ensureOffsetsTopic() error {
	// A new cluster's initial members start together: waiting (a little)
	// for every one of them spreads the offsets partitions over all,
	// instead of giving the first broker up all of them.
	deadline := time.Now().Add(offsetsSpreadWait)
	for n.id.Members != nil && time.Now().Before(deadline) {
		v := n.raft.View()
		if _, ok := v.Topic(OffsetsTopic); ok {
			return nil
		}
		all := true
		for id := range n.id.Members {
			if b, ok := v.Broker(metadata.BrokerID(id)); !ok || b.Fenced {
				all = false
			}
		}
		if all {
			break
		}
		time.Sleep(20 * time.Millisecond) // registrations arrive as applied commands
	}
	s := snapshotOf(n.raft.View(), n.brokerID())
	if _, ok := s.topics[OffsetsTopic]; ok {
		return nil
	}
	assign, err := n.placeTopic(s, wire.NewTopic{Name: OffsetsTopic}, n.cfg.OffsetsPartitions, 1)
	if err != nil {
		return fmt.Errorf("cluster: placing %s: %w", OffsetsTopic, err)
	}
	res, err := n.proposeWait(&metadata.CreateTopic{Name: OffsetsTopic, ID: metadata.TopicID(newTopicID()), Internal: true,
		Configs:    map[string]string{"cleanup.policy": "compact", "segment.bytes": "16777216", "retention.ms": "-1"},
		Partitions: assign})
	if err != nil {
		return fmt.Errorf("cluster: creating %s: %w", OffsetsTopic, err)
	}
	if !res.Accepted() && res.Code != metadata.ErrTopicExists {
		return fmt.Errorf("cluster: creating %s: %w", OffsetsTopic, res.Err())
	}
	return nil
}

// partitionCount is how many partitions of s this broker holds.
func partitionCount(s *snapshot) int {
	total := 0
	for _, t := range s.topics {
		for p := range t.Cores {
			if t.local(p) {
				total++
			}
		}
	}
	return total
}

// rehomed returns s with every partition on a core below cores, or s
// itself when nothing had to move.
func rehomed(s *snapshot, cores int) *snapshot {
	p := placementOf(s, cores)
	next := s
	for _, name := range s.names {
		t := s.topics[name]
		placed := p.Assign(name, t.Partitions())
		for i := range placed {
			if !t.local(i) {
				placed[i] = notLocal
			}
		}
		if !slices.Equal(placed, t.Cores) {
			nt := *t
			nt.Cores = placed
			next = next.with(name, &nt)
		}
	}
	return next
}

// openAll opens every partition's log on its owning core and waits.
func (n *Node) openAll() error {
	s := n.meta.Load()
	var wg sync.WaitGroup
	errs := make([]error, len(n.cores))
	for i, cs := range n.cores {
		cs, i := cs, i
		wg.Add(1)
		if err := n.rt.Post(cs.core.ID(), func(c *reactor.Core) {
			defer wg.Done()
			c.ExpectSlow() // recovery; no client is served before it ends
			for _, name := range s.names {
				t := s.topics[name]
				for p, c := range t.Cores {
					if c == cs.core.ID() {
						if err := cs.open(t, int32(p)); err != nil && errs[i] == nil {
							errs[i] = err
						}
					}
				}
			}
		}); err != nil {
			wg.Done()
			return err
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// defaultDrainTimeout: long enough for a produce's fsync on a busy disk,
// short enough that a stuck request cannot hold a restart.
const defaultDrainTimeout = 10 * time.Second

// Close stops the broker cleanly, in a way clients ride through: it stops
// accepting connections and drains (requests in flight finish with their
// normal answers, waiting long-polls answer with what they have, new
// requests get errors every client retries; see wire/drain.go), then every
// log is synced and closed, and the reactors stop, closing the
// connections. Group membership is already in the offsets log, so members
// carry on with their generation once the broker is back.
func (n *Node) Close(ctx context.Context) error {
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	n.stopLive()
	n.handOver(ctx)
	n.drain(ctx)
	n.closingLogs.Store(true)
	var wg sync.WaitGroup
	for _, cs := range n.cores {
		cs := cs
		wg.Add(1)
		if err := n.rt.Post(cs.core.ID(), func(*reactor.Core) { cs.closeAll(wg.Done) }); err != nil {
			wg.Done()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("cluster: closing logs: %w", ctx.Err())
	}
	if f := n.closeFailures.Load(); f > 0 {
		err = errors.Join(err, fmt.Errorf("cluster: %d partition logs failed to close cleanly (see the log); they recover on the next start", f))
	}
	// The rest of the clean-up (Raft, the metadata export: fsyncs, 0.2 s
	// on a loaded machine) runs before the reactor stops, while the
	// connections it has are still answered: closing them only when the
	// process is about to exit keeps short the time in which a client
	// cannot connect to this broker or to the one restarting after it.
	if n.serving.Load() {
		close(n.watchStop)
		<-n.watchDone
		n.brokers.stop()
	}
	if serr := n.exportMetadata(); serr != nil {
		n.log.Warn("writing the metadata.json export", "err", serr)
	}
	err = errors.Join(err, n.raft.Close())
	err = errors.Join(err, n.rt.Stop(ctx))
	// The listener is closed, but the port stays bound (KeepPort) until
	// Close returns, or with KeepPortUntilExit until the process exits: a
	// client connecting meanwhile waits and is reset, rather than refused,
	// so a restart refuses connections only from this process's exit to
	// the next one's bind (see Start).
	closeHookAfterReactor()
	if !n.cfg.KeepPortUntilExit {
		n.rt.ReleasePort()
	}
	return err
}

// drain is Close's first step. Its timeout is only logged: the logs are
// closed cleanly either way.
func (n *Node) drain(ctx context.Context) {
	start := time.Now()
	n.rt.StopAccepting()
	n.draining.Store(true)
	// Joins and syncs waiting for the rest of their group would hold the
	// drain until their rebalance timeout; they are told to find the
	// coordinator again, as are those reaching a coordinator from now on.
	for _, cs := range n.cores {
		cs := cs
		_ = n.rt.Post(cs.core.ID(), func(*reactor.Core) {
			for _, h := range cs.coords {
				h.coord.FailWaiting(kerr.NotCoordinator.Code)
			}
		})
	}
	dctx, cancel := context.WithTimeout(ctx, n.cfg.DrainTimeout)
	defer cancel()
	if err := n.srv.Drain(dctx); err != nil {
		n.log.Warn("shutdown: draining did not finish; closing anyway", "err", err, "drain_timeout", n.cfg.DrainTimeout)
		return
	}
	n.log.Info("shutdown: drained; closing logs", "took", time.Since(start).Round(time.Millisecond))
}

func (n *Node) attach(c gnet.Conn) wire.Backend {
	core := reactor.CoreOf(c)
	return &backend{node: n, cs: n.cores[core.ID()]}
}

func (n *Node) partitionDir(topic string, p int32) string {
	return filepath.Join(n.cfg.DataDir, fmt.Sprintf("%s-%d", topic, p))
}
