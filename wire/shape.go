package wire

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kbin"
)

// Why this file exists: kmsg's decoders read a tagged-field count and then
// loop that many times even after the input is exhausted, so a 7-byte
// flexible body whose tag count is 0xFFFFFFFF keeps an event loop (a whole
// core) busy for about 45 s. They also allocate an array of N elements when N
// fits in the remaining bytes, whatever the element size. Before handing a
// body to kmsg, checkShape walks it with the same layout kmsg uses, without
// allocating, and rejects any count that the remaining bytes cannot hold.
// The walk is linear in the body length. It may accept bodies kmsg rejects
// (it treats every string as nullable); it must never reject a body kmsg
// accepts, which TestShapeMatchesKmsg checks against kmsg encodings of every
// version.

// shape is a non-allocating reader that only validates lengths and counts.
type shape struct {
	b    []byte
	flex bool
	bad  bool
}

func (s *shape) skip(n int) {
	if s.bad || n < 0 || n > len(s.b) {
		s.fail()
		return
	}
	s.b = s.b[n:]
}

func (s *shape) fail() { s.bad, s.b = true, nil }

func (s *shape) i8()   { s.skip(1) }
func (s *shape) i16()  { s.skip(2) }
func (s *shape) i32()  { s.skip(4) }
func (s *shape) i64()  { s.skip(8) }
func (s *shape) uuid() { s.skip(16) }

func (s *shape) uvarint() uint32 {
	if s.bad {
		return 0
	}
	v, n := kbin.Uvarint(s.b)
	if n <= 0 {
		s.fail()
		return 0
	}
	s.b = s.b[n:]
	return v
}

func (s *shape) int16v() int16 {
	if s.bad || len(s.b) < 2 {
		s.fail()
		return 0
	}
	v := int16(binary.BigEndian.Uint16(s.b))
	s.b = s.b[2:]
	return v
}

func (s *shape) int32v() int32 {
	if s.bad || len(s.b) < 4 {
		s.fail()
		return 0
	}
	v := int32(binary.BigEndian.Uint32(s.b))
	s.b = s.b[4:]
	return v
}

// str skips a (nullable) string: compact (uvarint len+1) when flexible,
// int16 length otherwise.
func (s *shape) str() {
	if s.flex {
		if l := int(s.uvarint()) - 1; l > 0 {
			s.skip(l)
		}
		return
	}
	if l := s.int16v(); l > 0 {
		s.skip(int(l))
	}
}

// bytes skips (nullable) bytes: compact when flexible, int32 length otherwise.
func (s *shape) bytes() {
	if s.flex {
		if l := int(s.uvarint()) - 1; l > 0 {
			s.skip(l)
		}
		return
	}
	if l := s.int32v(); l > 0 {
		s.skip(int(l))
	}
}

// arrayLen mirrors kbin's ArrayLen/CompactArrayLen, including the int32
// wrap of huge compact lengths, so that both readers agree on structure.
func (s *shape) arrayLen() int32 {
	var n int32
	if s.flex {
		n = int32(s.uvarint()) - 1
	} else {
		n = s.int32v()
	}
	if int(n) > len(s.b) { // every element takes at least one byte
		s.fail()
		return 0
	}
	return n
}

// array walks each element with fn, stopping at the first failure.
func (s *shape) array(fn func()) {
	n := s.arrayLen()
	for i := int32(0); i < n && !s.bad; i++ {
		fn()
	}
}

// fixedArray skips an array of fixed-size elements.
func (s *shape) fixedArray(size int) {
	if n := s.arrayLen(); n > 0 {
		s.skip(int(n) * size)
	}
}

// tags skips a tagged-field section (flexible versions only). known, if not
// nil, walks the content of a tag whose value kmsg decodes with its own
// nested tag loop.
func (s *shape) tags(known func(key uint32, content []byte) bool) {
	if !s.flex || s.bad {
		return
	}
	n := s.uvarint()
	if uint64(n)*2 > uint64(len(s.b)) { // each tag: key and size, >= 1 byte each
		s.fail()
		return
	}
	for ; n > 0 && !s.bad; n-- {
		key, size := s.uvarint(), s.uvarint()
		if s.bad || int(size) > len(s.b) || int(size) < 0 {
			s.fail()
			return
		}
		content := s.b[:size]
		s.b = s.b[size:]
		if known != nil && !known(key, content) {
			s.fail()
		}
	}
}

func (s *shape) ok() bool { return !s.bad }
