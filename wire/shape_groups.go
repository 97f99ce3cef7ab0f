package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// Request layouts of the consumer-group keys and InitProducerID, for the
// pre-check in shape.go, at every version kmsg v1.15.0 knows.
func shapeGroup(s *shape, key, v int16) bool {
	switch kmsg.Key(key) {
	case kmsg.FindCoordinator:
		if v <= 3 {
			s.str()
		}
		if v >= 1 {
			s.i8()
		}
		if v >= 4 {
			s.array(s.str)
		}
	case kmsg.JoinGroup:
		s.str()
		s.i32()
		if v >= 1 {
			s.i32()
		}
		s.str() // member id
		if v >= 5 {
			s.str() // instance id
		}
		s.str() // protocol type
		s.array(func() { s.str(); s.bytes(); s.tags(nil) })
		if v >= 8 {
			s.str() // reason
		}
	case kmsg.Heartbeat:
		s.str()
		s.i32()
		s.str()
		if v >= 3 {
			s.str()
		}
	case kmsg.LeaveGroup:
		s.str()
		if v <= 2 {
			s.str()
		} else {
			s.array(func() {
				s.str()
				s.str()
				if v >= 5 {
					s.str()
				}
				s.tags(nil)
			})
		}
	case kmsg.SyncGroup:
		s.str()
		s.i32()
		s.str()
		if v >= 3 {
			s.str()
		}
		if v >= 5 {
			s.str()
			s.str()
		}
		s.array(func() { s.str(); s.bytes(); s.tags(nil) })
	case kmsg.OffsetCommit:
		shapeOffsetCommit(s, v)
	case kmsg.OffsetFetch:
		shapeOffsetFetch(s, v)
	case kmsg.DescribeGroups:
		s.array(s.str)
		if v >= 3 {
			s.i8()
		}
	case kmsg.ListGroups:
		if v >= 4 {
			s.array(s.str)
		}
		if v >= 5 {
			s.array(s.str)
		}
	case kmsg.DeleteGroups:
		s.array(s.str)
	case kmsg.OffsetDelete:
		s.str()
		s.array(func() { s.str(); s.fixedArray(4) })
	case kmsg.InitProducerID:
		s.str()
		s.i32()
		if v >= 3 {
			s.i64()
			s.i16()
		}
	default:
		return false
	}
	return true
}

func shapeOffsetCommit(s *shape, v int16) {
	s.str()
	if v >= 1 {
		s.i32() // generation
		s.str() // member id
	}
	if v >= 7 {
		s.str() // instance id
	}
	if v >= 2 && v <= 4 {
		s.i64() // retention
	}
	s.array(func() {
		if v <= 9 {
			s.str()
		} else {
			s.uuid()
		}
		s.array(func() {
			s.i32()
			s.i64()
			if v == 1 {
				s.i64() // timestamp
			}
			if v >= 6 {
				s.i32() // leader epoch
			}
			s.str() // metadata
			s.tags(nil)
		})
		s.tags(nil)
	})
}

func shapeOffsetFetch(s *shape, v int16) {
	if v <= 7 {
		s.str()
		s.array(func() { s.str(); s.fixedArray(4); s.tags(nil) })
	} else {
		s.array(func() {
			s.str()
			if v >= 9 {
				s.str() // member id
				s.i32() // member epoch
			}
			s.array(func() {
				if v <= 9 {
					s.str()
				} else {
					s.uuid()
				}
				s.fixedArray(4)
				s.tags(nil)
			})
			s.tags(nil)
		})
	}
	if v >= 7 {
		s.i8() // require stable
	}
}
