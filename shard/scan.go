package shard

import (
	"fmt"
	"hash/crc32"
)

// stopReason says why a scan of segment bytes ended.
type stopReason int

const (
	stopNone      stopReason = iota // still going: more bytes needed
	stopZeros                       // clean end: zero padding after the last batch
	stopTorn                        // a batch runs past the data we have
	stopCorrupt                     // header fields or CRC are wrong
	stopDiscontig                   // base offset does not follow the previous batch
)

func (r stopReason) String() string {
	return [...]string{"more", "clean end", "torn batch", "corrupt batch", "offset discontinuity"}[r]
}

// scanState carries a scan across chunks of one segment.
type scanState struct {
	pos      int64  // file position of the next batch
	next     Offset // offset the next batch must start at (-1: accept any)
	last     BatchHeader
	batches  int
	maxBatch int
	// checkEpochs: the stamped leader epochs (outside the CRC) must not
	// decrease, and must lie in [0, maxEpoch], the newest epoch the log's
	// epoch cache knows (it is persisted before any batch carries it).
	checkEpochs bool
	maxEpoch    Epoch
	lastEpoch   Epoch
	// gaps accepts a base offset past the expected one, as in a segment
	// the cleaner rewrote (never in the active segment's recovery).
	gaps       bool
	onBatch    func(h *BatchHeader, pos int64)
	stop       stopReason
	stopDetail string
}

// scan walks whole batches in buf, which holds file bytes starting at
// bufPos. It stops at the first byte range that is not a valid continuation
// of the log. atEOF says that buf ends where the file's data ends, so a
// batch running past it is torn rather than merely cut by the chunk.
//
// This is the recovery scanner: it is a pure function of its input and is
// fuzzed (FuzzScan).
func (s *scanState) scan(buf []byte, bufPos int64, atEOF bool) {
	for s.stop == stopNone {
		off := int(s.pos - bufPos)
		rest := buf[off:]
		if len(rest) < BatchHeaderSize {
			if atEOF {
				if allZero(rest) {
					s.stop = stopZeros
				} else {
					s.stop, s.stopDetail = stopTorn, fmt.Sprintf("%d trailing bytes", len(rest))
				}
			}
			return
		}
		if allZero(rest[:BatchHeaderSize]) {
			s.stop = stopZeros
			return
		}
		h, _ := ParseBatchHeader(rest)
		if err := h.check(s.maxBatch); err != nil {
			s.stop, s.stopDetail = stopCorrupt, err.Error()
			return
		}
		if h.BaseOffset < 0 || h.LastOffset() < h.BaseOffset {
			// baseOffset lies outside the CRC: a flipped bit there must not
			// pass for a batch (nor turn off the sequence check below).
			s.stop, s.stopDetail = stopCorrupt, fmt.Sprintf("base offset %d", h.BaseOffset)
			return
		}
		if s.next >= 0 && h.BaseOffset != s.next && !(s.gaps && h.BaseOffset > s.next) {
			s.stop, s.stopDetail = stopDiscontig, fmt.Sprintf("base offset %d, expected %d", h.BaseOffset, s.next)
			return
		}
		if s.checkEpochs && (h.LeaderEpoch < s.lastEpoch || h.LeaderEpoch > s.maxEpoch) {
			s.stop, s.stopDetail = stopCorrupt, fmt.Sprintf("leader epoch %d after %d (newest known %d)", h.LeaderEpoch, s.lastEpoch, s.maxEpoch)
			return
		}
		if h.Size() > len(rest) {
			if atEOF {
				s.stop, s.stopDetail = stopTorn, fmt.Sprintf("batch of %d bytes, %d left", h.Size(), len(rest))
			}
			return
		}
		if crc32.Checksum(rest[21:h.Size()], castagnoli) != h.CRC {
			s.stop, s.stopDetail = stopCorrupt, "crc mismatch"
			return
		}
		if s.onBatch != nil {
			s.onBatch(&h, s.pos)
		}
		s.last = h
		s.lastEpoch = h.LeaderEpoch
		s.batches++
		s.next = h.LastOffset() + 1
		s.pos += int64(h.Size())
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
