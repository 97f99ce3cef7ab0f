package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// apiRange is one advertised API key and its version range.
type apiRange struct {
	key      int16
	min, max int16
}

// advertised lists every API this package implements, and only those. The
// floors follow the client compatibility table in DEPS.md §6 (librdkafka and
// kafka-go send old versions without negotiating). The ceilings stop where a
// version would need something Strand lacks:
//
//   - Produce 13+ and Fetch 13+ name topics by topic ID.
//   - ListOffsets 11 adds -6 (earliest pending tiered upload, KIP-1023);
//     10 only adds a timeout, and -4/-5 (v8/v9) have plain answers when
//     nothing is tiered.
//   - DescribeLogDirs 5 reports cordoned directories (KIP-1066).
//   - Metadata 13 is fine on the wire but adds nothing clients need.
//   - ApiVersions 5 (KIP-1071 cluster id + node id) is for controllers; a v5
//     request gets the KIP-511 downgrade answer and the client retries at 4.
//
// Fetch below 4 serves message formats v0/v1, which Strand never stores.
// Produce starts at 0 all the same: librdkafka up to 2.11.0 (Debian's
// kcat links 2.0.2) compresses with gzip, snappy or lz4 only if the broker
// advertises Produce v0, and silently sends uncompressed batches
// otherwise. A Produce v0-v2 request carries a v0/v1 message set, which
// validateProduceBatch refuses per partition with INVALID_RECORD.
var advertised = []apiRange{
	{kmsg.Produce.Int16(), 0, 12},
	{kmsg.Fetch.Int16(), 4, 12},
	{kmsg.ListOffsets.Int16(), 0, 10},
	{kmsg.Metadata.Int16(), 0, 12},
	{kmsg.ApiVersions.Int16(), 0, 4},
	{kmsg.CreateTopics.Int16(), 0, 7},
	{kmsg.DeleteTopics.Int16(), 0, 6},
	{kmsg.DescribeConfigs.Int16(), 0, 4},
	{kmsg.AlterConfigs.Int16(), 0, 2},
	{kmsg.CreatePartitions.Int16(), 0, 3},
	{kmsg.DeleteRecords.Int16(), 0, 2},
	{kmsg.DescribeLogDirs.Int16(), 0, 4},
	{kmsg.DescribeProducers.Int16(), 0, 0},
	{kmsg.IncrementalAlterConfigs.Int16(), 0, 1},
	{kmsg.OffsetForLeaderEpoch.Int16(), 0, 4},
}

// groupAdvertised lists the keys served through GroupBackend, advertised
// only to connections whose Backend implements it. Ceilings stop before
// topic IDs (OffsetCommit/OffsetFetch 10), share groups (FindCoordinator 6),
// KIP-890 epoch bumps (InitProducerID 5) and fields the coordinator does not
// fill (DescribeGroups 6 error messages, ListGroups 5 type filters).
var groupAdvertised = []apiRange{
	{kmsg.OffsetCommit.Int16(), 0, 9},
	{kmsg.OffsetFetch.Int16(), 0, 9},
	{kmsg.FindCoordinator.Int16(), 0, 4},
	{kmsg.JoinGroup.Int16(), 0, 9},
	{kmsg.Heartbeat.Int16(), 0, 4},
	{kmsg.LeaveGroup.Int16(), 0, 5},
	{kmsg.SyncGroup.Int16(), 0, 5},
	{kmsg.DescribeGroups.Int16(), 0, 5},
	{kmsg.ListGroups.Int16(), 0, 4},
	{kmsg.InitProducerID.Int16(), 0, 4},
	{kmsg.DeleteGroups.Int16(), 0, 2},
	{kmsg.OffsetDelete.Int16(), 0, 0},
}

// clusterAdvertised lists the keys served through ClusterBackend,
// advertised only to connections whose Backend implements it.
// DescribeCluster 1 adds an endpoint type for controllers; AddRaftVoter 1
// only AckWhenCommitted, which is how Strand always answers.
var clusterAdvertised = []apiRange{
	{kmsg.DescribeCluster.Int16(), 0, 1},
	{kmsg.AddRaftVoter.Int16(), 0, 1},
	{kmsg.UnregisterBroker.Int16(), 0, 0},
	{kmsg.ElectLeaders.Int16(), 0, 2},
	{kmsg.AlterPartitionAssignments.Int16(), 0, 1},
	{kmsg.ListPartitionReassignments.Int16(), 0, 0},
}

// versionRange returns the advertised range for key; withGroups includes
// groupAdvertised, withCluster clusterAdvertised.
func versionRange(key int16, withGroups bool, withCluster ...bool) (min, max int16, ok bool) {
	if len(withCluster) > 0 && withCluster[0] {
		for _, a := range clusterAdvertised {
			if a.key == key {
				return a.min, a.max, true
			}
		}
	}
	for _, a := range advertised {
		if a.key == key {
			return a.min, a.max, true
		}
	}
	if withGroups {
		for _, a := range groupAdvertised {
			if a.key == key {
				return a.min, a.max, true
			}
		}
	}
	return 0, 0, false
}

// apiVersionsKeys is the ApiKeys list of the ApiVersions response.
func apiVersionsKeys(withGroups bool, withCluster ...bool) []kmsg.ApiVersionsResponseApiKey {
	all := advertised
	if withGroups {
		all = append(append([]apiRange(nil), advertised...), groupAdvertised...)
	}
	if len(withCluster) > 0 && withCluster[0] {
		all = append(append([]apiRange(nil), all...), clusterAdvertised...)
	}
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(all))
	for _, a := range all {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
		keys = append(keys, k)
	}
	return keys
}
