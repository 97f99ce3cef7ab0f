package metadata

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The primitives every command and snapshot is built from. The decoder is
// strict so that the encoding is canonical: a varint must use its shortest
// form, a bool is 0 or 1, map keys come sorted and distinct, and nothing may
// follow the last field. Any other input is an error, never a panic. Every
// length or count is checked against the bytes left before anything is
// allocated, so a decoded value is never larger than its input.

// errShort and friends are wrapped with the field being decoded.
var (
	errShort     = errors.New("truncated")
	errNonMinVar = errors.New("varint not in shortest form")
	errRange     = errors.New("value out of range")
)

type encoder struct{ b []byte }

func (e *encoder) byte(v byte)       { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64)  { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)    { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) id(v TopicID)      { e.b = append(e.b, v[:]...) }
func (e *encoder) broker(v BrokerID) { e.varint(int64(v)) }
func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}
func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) brokers(ids []BrokerID) {
	e.uvarint(uint64(len(ids)))
	for _, id := range ids {
		e.broker(id)
	}
}
func (e *encoder) cores(cs []CoreID) {
	e.uvarint(uint64(len(cs)))
	for _, c := range cs {
		e.varint(int64(c))
	}
}

// strMap encodes a map with its keys in order; decoders require that order.
func (e *encoder) strMap(m map[string]string) {
	keys := sortedKeys(m)
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

// strList encodes a list of strings in its own order.
func (e *encoder) strList(l []string) {
	e.uvarint(uint64(len(l)))
	for _, k := range l {
		e.str(k)
	}
}

type decoder struct {
	b   []byte
	off int
	err error
	// version is the command's encoding version (0 for snapshots).
	version byte
}

func (d *decoder) fail(field string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("metadata: decode %s at byte %d: %w", field, d.off, err)
	}
}

func (d *decoder) left() int { return len(d.b) - d.off }

func (d *decoder) byte(field string) byte {
	if d.err != nil {
		return 0
	}
	if d.left() < 1 {
		d.fail(field, errShort)
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail(field, errShort)
		return 0
	}
	if n != uvarintLen(v) {
		d.fail(field, errNonMinVar)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail(field, errShort)
		return 0
	}
	// Varint is a zigzag over Uvarint, so the shortest form of v is that of
	// its zigzag value.
	if n != uvarintLen(zigzag(v)) {
		d.fail(field, errNonMinVar)
		return 0
	}
	d.off += n
	return v
}

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func (d *decoder) int32(field string) int32 {
	v := d.varint(field)
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail(field, errRange)
		return 0
	}
	return int32(v)
}

func (d *decoder) broker(field string) BrokerID { return BrokerID(d.int32(field)) }

func (d *decoder) bool(field string) bool {
	switch d.byte(field) {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail(field, errRange)
		return false
	}
}

func (d *decoder) id(field string) TopicID {
	var v TopicID
	if d.err != nil {
		return v
	}
	if d.left() < len(v) {
		d.fail(field, errShort)
		return v
	}
	copy(v[:], d.b[d.off:])
	d.off += len(v)
	return v
}

func (d *decoder) str(field string) string {
	n := d.uvarint(field)
	if d.err != nil {
		return ""
	}
	if n > uint64(d.left()) {
		d.fail(field, errShort)
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

// count reads an element count and checks that the bytes left could hold
// that many elements of at least minBytes each, so a forged count cannot
// make the caller allocate more than the input's size.
func (d *decoder) count(field string, minBytes int) int {
	n := d.uvarint(field)
	if d.err != nil {
		return 0
	}
	if n > uint64(d.left()/minBytes) {
		d.fail(field, errShort)
		return 0
	}
	return int(n)
}

func (d *decoder) brokers(field string) []BrokerID {
	n := d.count(field, 1)
	if n == 0 {
		return nil
	}
	out := make([]BrokerID, n)
	for i := range out {
		out[i] = d.broker(field)
	}
	return out
}

func (d *decoder) cores(field string) []CoreID {
	n := d.count(field, 1)
	if n == 0 {
		return nil
	}
	out := make([]CoreID, n)
	for i := range out {
		out[i] = CoreID(d.int32(field))
	}
	return out
}

func (d *decoder) strMap(field string) map[string]string {
	n := d.count(field, 2)
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	prev := ""
	for i := 0; i < n && d.err == nil; i++ {
		k := d.str(field)
		v := d.str(field)
		if i > 0 && k <= prev {
			d.fail(field, errors.New("keys not sorted and distinct"))
			return nil
		}
		m[k], prev = v, k
	}
	return m
}

// end fails unless every byte was consumed.
func (d *decoder) end() error {
	if d.err == nil && d.left() != 0 {
		d.fail("end", fmt.Errorf("%d trailing bytes", d.left()))
	}
	return d.err
}

// strList decodes what encoder.strList wrote; an empty list is nil.
func (d *decoder) strList(field string) []string {
	n := d.count(field, 1)
	if n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := 0; i < n && d.err == nil; i++ {
		l[i] = d.str(field)
	}
	return l
}
