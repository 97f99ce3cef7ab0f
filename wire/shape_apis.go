package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// checkShape reports whether body is a structurally sound request body for
// key at version v (see shape.go). Layouts follow kmsg v1.15.0 up to each
// key's kmsg maximum. Unknown keys are rejected.
func checkShape(key, v int16, flex bool, body []byte) bool {
	_, ok := walkShape(key, v, flex, body)
	return ok
}

// walkShape is checkShape that also returns the bytes left after the body's
// layout (kmsg ignores trailing bytes; tests check there are none).
func walkShape(key, v int16, flex bool, body []byte) ([]byte, bool) {
	s := &shape{b: body, flex: flex}
	switch kmsg.Key(key) {
	case kmsg.Produce:
		shapeProduce(s, v)
	case kmsg.Fetch:
		shapeFetch(s, v)
	case kmsg.ListOffsets:
		shapeListOffsets(s, v)
	case kmsg.Metadata:
		shapeMetadata(s, v)
	case kmsg.ApiVersions:
		if v >= 3 {
			s.str()
			s.str()
		}
		if v >= 5 {
			s.str()
			s.i32()
		}
	case kmsg.CreateTopics:
		shapeCreateTopics(s, v)
	case kmsg.DeleteTopics:
		if v <= 5 {
			s.array(s.str)
		} else {
			s.array(func() { s.str(); s.uuid(); s.tags(nil) })
		}
		s.i32()
	case kmsg.DescribeConfigs:
		s.array(func() { s.i8(); s.str(); s.array(s.str); s.tags(nil) })
		if v >= 1 {
			s.i8()
		}
		if v >= 3 {
			s.i8()
		}
	case kmsg.AlterConfigs:
		s.array(func() {
			s.i8()
			s.str()
			s.array(func() { s.str(); s.str(); s.tags(nil) })
			s.tags(nil)
		})
		s.i8()
	case kmsg.IncrementalAlterConfigs:
		s.array(func() {
			s.i8()
			s.str()
			s.array(func() { s.str(); s.i8(); s.str(); s.tags(nil) })
			s.tags(nil)
		})
		s.i8()
	case kmsg.CreatePartitions:
		s.array(func() {
			s.str()
			s.i32()
			s.array(func() { s.fixedArray(4); s.tags(nil) })
			s.tags(nil)
		})
		s.i32()
		s.i8()
	case kmsg.DeleteRecords:
		s.array(func() {
			s.str()
			s.array(func() { s.i32(); s.i64(); s.tags(nil) })
			s.tags(nil)
		})
		s.i32() // timeout
	case kmsg.OffsetForLeaderEpoch:
		if v >= 3 {
			s.i32() // replica id
		}
		s.array(func() {
			s.str()
			s.array(func() {
				s.i32() // partition
				if v >= 2 {
					s.i32() // current leader epoch
				}
				s.i32() // leader epoch
				s.tags(nil)
			})
			s.tags(nil)
		})
	case kmsg.DescribeLogDirs, kmsg.DescribeProducers:
		// Same layout: topics (nullable for DescribeLogDirs) with
		// partition ids.
		s.array(func() { s.str(); s.fixedArray(4); s.tags(nil) })
	case kmsg.DescribeCluster:
		s.i8() // include cluster authorized operations
		if v >= 1 {
			s.i8() // endpoint type
		}
	case kmsg.UnregisterBroker:
		s.i32() // broker id
	case kmsg.ElectLeaders:
		if v >= 1 {
			s.i8() // election type
		}
		s.array(func() { s.str(); s.fixedArray(4); s.tags(nil) }) // nullable
		s.i32()                                                   // timeout
	case kmsg.AlterPartitionAssignments:
		s.i32() // timeout
		if v >= 1 {
			s.i8() // allow replication factor change
		}
		s.array(func() {
			s.str()
			s.array(func() { s.i32(); s.fixedArray(4); s.tags(nil) }) // replicas nullable
			s.tags(nil)
		})
	case kmsg.ListPartitionReassignments:
		s.i32()                                                   // timeout
		s.array(func() { s.str(); s.fixedArray(4); s.tags(nil) }) // nullable
	case kmsg.AddRaftVoter:
		s.str() // cluster id
		s.i32() // timeout
		s.i32() // voter id
		s.uuid()
		s.array(func() { s.str(); s.str(); s.i16(); s.tags(nil) })
		if v >= 1 {
			s.i8() // ack when committed
		}
	default:
		if !shapeGroup(s, key, v) {
			return nil, false
		}
	}
	s.tags(fetchTopTags(key))
	return s.b, s.ok()
}

func shapeProduce(s *shape, v int16) {
	if v >= 3 {
		s.str() // transactional id
	}
	s.i16() // acks
	s.i32() // timeout
	s.array(func() {
		if v <= 12 {
			s.str()
		} else {
			s.uuid()
		}
		s.array(func() { s.i32(); s.bytes(); s.tags(nil) })
		s.tags(nil)
	})
}

func shapeFetch(s *shape, v int16) {
	if v <= 14 {
		s.i32() // replica id
	}
	s.i32() // max wait
	s.i32() // min bytes
	if v >= 3 {
		s.i32() // max bytes
	}
	if v >= 4 {
		s.i8() // isolation
	}
	if v >= 7 {
		s.i32() // session id
		s.i32() // session epoch
	}
	topic := func() {
		if v <= 12 {
			s.str()
		} else {
			s.uuid()
		}
	}
	s.array(func() {
		topic()
		s.array(func() {
			s.i32() // partition
			if v >= 9 {
				s.i32() // current leader epoch
			}
			s.i64() // fetch offset
			if v >= 12 {
				s.i32() // last fetched epoch
			}
			if v >= 5 {
				s.i64() // log start offset
			}
			s.i32()     // partition max bytes
			s.tags(nil) // known tags 0 (uuid) and 1 (int64) have no nested tags
		})
		s.tags(nil)
	})
	if v >= 7 {
		s.array(func() { topic(); s.fixedArray(4); s.tags(nil) })
	}
	if v >= 11 {
		s.str() // rack
	}
}

// fetchTopTags walks FetchRequest's top-level tag 1 (ReplicaState), the one
// known tag in these requests whose value has its own tag section.
func fetchTopTags(key int16) func(uint32, []byte) bool {
	if key != kmsg.Fetch.Int16() {
		return nil
	}
	return func(tag uint32, content []byte) bool {
		if tag != 1 {
			return true
		}
		in := &shape{b: content, flex: true}
		in.i32()
		in.i64()
		in.tags(nil)
		return in.ok()
	}
}

func shapeListOffsets(s *shape, v int16) {
	s.i32() // replica id
	if v >= 2 {
		s.i8() // isolation
	}
	s.array(func() {
		s.str()
		s.array(func() {
			s.i32()
			if v >= 4 {
				s.i32()
			}
			s.i64()
			if v == 0 {
				s.i32() // max num offsets
			}
			s.tags(nil)
		})
		s.tags(nil)
	})
	if v >= 10 {
		s.i32()
	}
}

func shapeMetadata(s *shape, v int16) {
	s.array(func() {
		if v >= 10 {
			s.uuid()
		}
		s.str()
		s.tags(nil)
	})
	if v >= 4 {
		s.i8()
	}
	if v >= 8 && v <= 10 {
		s.i8()
	}
	if v >= 8 {
		s.i8()
	}
}

func shapeCreateTopics(s *shape, v int16) {
	s.array(func() {
		s.str()
		s.i32()
		s.i16()
		s.array(func() { s.i32(); s.fixedArray(4); s.tags(nil) })
		s.array(func() { s.str(); s.str(); s.tags(nil) })
		s.tags(nil)
	})
	s.i32()
	if v >= 1 {
		s.i8()
	}
}
