package cluster

import "testing"

// Raft replica ids carry the node id in the low half and a generation in
// the high half: an initial voter's id is today's node id + 1, a rejoin
// with a new data dir gets another id of the same node.
func TestRaftReplicaIDs(t *testing.T) {
	for _, node := range []int32{0, 1, 7, 1<<31 - 2} {
		if got := raftReplicaID(node, 0); got != uint64(node)+1 {
			t.Fatalf("node %d generation 0: replica %d, want %d", node, got, uint64(node)+1)
		}
		for _, dir := range []uint64{1, 1 << 40, 0xffffffff00000000, newLogDirID()} {
			gen := raftGeneration(dir)
			rid := raftReplicaID(node, gen)
			if gen == 0 || rid == raftReplicaID(node, 0) || raftNodeID(rid) != node {
				t.Fatalf("node %d dir %x: generation %d replica %d maps to node %d", node, dir, gen, rid, raftNodeID(rid))
			}
		}
	}
	if raftGeneration(0) != 0 {
		t.Fatal("no dir id must keep generation 0")
	}
}
