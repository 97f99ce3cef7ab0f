package shard

import (
	"encoding/binary"
	"errors"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/strand-io/strand/dma"
)

// Recovery, case by case (the table in recovery.go). Each case damages the
// directory of a cleanly closed log the way a crash, a stale earlier
// incarnation or a lost index write would, reopens it, and checks the
// recovered end, whether recovery reported a cut, that everything before
// the end reads back byte for byte, that nothing but zeros is left after
// it, and that the log then appends and recovers again cleanly.

// tailInfo describes the tail segment of the log a case starts from.
type tailInfo struct {
	dir, path string
	base      SegmentBase
	hs        []BatchHeader
	pos       []int64
	end       Offset // offset after the last batch
	size      int64  // bytes of batches
}

func (ti *tailInfo) idx(ext string) string { return filepath.Join(ti.dir, ti.base.fileName(ext)) }

func TestRecoveryCases(t *testing.T) {
	cfg := Config{SegmentBytes: 160 << 10, IndexIntervalBytes: 1024, IndexCheckpointBytes: 4096}
	mid := func(ti *tailInfo) int { return len(ti.hs) / 2 }
	last := func(ti *tailInfo) int { return len(ti.hs) - 1 }
	rewrite := func(t *testing.T, fs *dma.MemFS, path string, f func(b []byte) []byte) {
		writeMemFile(t, fs, path, f(memFileBytes(t, fs, path)))
	}
	staleBatch := func(base Offset) []byte {
		return onDisk(makeBatch(3, 77, payload(rand.New(rand.NewSource(9)), 900)), base, 0)
	}
	cases := []struct {
		name    string
		damage  func(t *testing.T, fs *dma.MemFS, ti *tailInfo)
		wantEnd func(ti *tailInfo) Offset
		cut     bool                   // recovery must report that it truncated
		damaged func(ti *tailInfo) int // a tail batch that reads must refuse
	}{
		{"clean", func(*testing.T, *dma.MemFS, *tailInfo) {}, nil, false, nil},
		{"torn-tail-short-file", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			rewrite(t, fs, ti.path, func(b []byte) []byte { return b[:ti.pos[last(ti)]+100] })
		}, func(ti *tailInfo) Offset { return ti.hs[last(ti)].BaseOffset }, true, nil},
		{"torn-tail-lost-sector", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			rewrite(t, fs, ti.path, func(b []byte) []byte {
				p := ti.pos[last(ti)] + 600
				clear(b[p : p+512])
				return b
			})
		}, func(ti *tailInfo) Offset { return ti.hs[last(ti)].BaseOffset }, true, nil},
		{"torn-tail-header-only", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			rewrite(t, fs, ti.path, func(b []byte) []byte {
				p := ti.pos[last(ti)]
				clear(b[p+BatchHeaderSize:])
				return b
			})
		}, func(ti *tailInfo) Offset { return ti.hs[last(ti)].BaseOffset }, true, nil},
		{"zeroed-tail-past-end", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			rewrite(t, fs, ti.path, func(b []byte) []byte { return append(b, make([]byte, 3*4096)...) })
		}, nil, false, nil},
		{"preallocated-tail", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			rewrite(t, fs, ti.path, func(b []byte) []byte { return append(b, make([]byte, 1<<20)...) })
		}, nil, false, nil},
		{"index-missing", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			fs.Remove(ti.idx(indexExt))
			fs.Remove(ti.idx(timeIndexExt))
		}, nil, false, nil},
		{"index-garbage", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			rewrite(t, fs, ti.idx(indexExt), func(b []byte) []byte { return payload(rand.New(rand.NewSource(1)), len(b)+40) })
		}, nil, false, nil},
		{"index-torn-last-entry", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			rewrite(t, fs, ti.idx(indexExt), func(b []byte) []byte {
				binary.BigEndian.PutUint32(b[len(b)-4:], uint32(ti.pos[mid(ti)]+7)) // points inside a batch
				return b
			})
		}, nil, false, nil},
		{"index-entries-past-end", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			rewrite(t, fs, ti.idx(indexExt), func(b []byte) []byte {
				for i := 1; i <= 3; i++ {
					b = binary.BigEndian.AppendUint32(b, uint32(ti.end-Offset(ti.base))+uint32(10*i))
					b = binary.BigEndian.AppendUint32(b, uint32(ti.size)+uint32(4096*i))
				}
				return b
			})
		}, nil, false, nil},
		{"timeindex-garbage", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			rewrite(t, fs, ti.idx(timeIndexExt), func(b []byte) []byte { return payload(rand.New(rand.NewSource(2)), len(b)) })
		}, nil, false, nil},
		{"timeindex-lost-entries", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			rewrite(t, fs, ti.idx(timeIndexExt), func(b []byte) []byte { return b[:timeEntrySize] })
		}, nil, false, nil},
		{"stale-batch-after-end-future-offset", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			rewrite(t, fs, ti.path, func(b []byte) []byte { return append(b[:ti.size], staleBatch(ti.end+50)...) })
		}, nil, true, nil},
		{"stale-batch-after-end-old-offset", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			rewrite(t, fs, ti.path, func(b []byte) []byte { return append(b[:ti.size], staleBatch(ti.hs[2].BaseOffset)...) })
		}, nil, true, nil},
		{"stale-batch-after-zero-gap", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			// A whole stale batch beyond a zero block, as an older, longer
			// incarnation of the file would leave.
			rewrite(t, fs, ti.path, func(b []byte) []byte {
				b = append(b[:ti.size], make([]byte, 8192)...)
				return append(b, staleBatch(ti.end+3)...)
			})
		}, nil, false, nil},
		// A damaged batch before the last index checkpoint is not scanned
		// at recovery (that is what makes it cheap); reads report it.
		{"crc-mismatch-before-checkpoint", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			fs.Corrupt(ti.path, ti.pos[mid(ti)]+BatchHeaderSize+10)
		}, nil, false, mid},
		// In the scanned part (here all of it: no index), recovery cuts at
		// the first damaged batch, later valid ones included.
		{"crc-mismatch-scanned", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			fs.Remove(ti.idx(indexExt))
			fs.Corrupt(ti.path, ti.pos[mid(ti)]+BatchHeaderSize+10)
		}, func(ti *tailInfo) Offset { return ti.hs[mid(ti)].BaseOffset }, true, nil},
		{"leader-epoch-flipped-scanned", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			fs.Remove(ti.idx(indexExt))
			fs.Corrupt(ti.path, ti.pos[mid(ti)]+15) // epoch 0 becomes 255: newer than any known
		}, func(ti *tailInfo) Offset { return ti.hs[mid(ti)].BaseOffset }, true, nil},
		{"garbage-header-scanned", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			fs.Remove(ti.idx(indexExt))
			rewrite(t, fs, ti.path, func(b []byte) []byte {
				copy(b[ti.pos[mid(ti)]:], payload(rand.New(rand.NewSource(3)), BatchHeaderSize))
				return b
			})
		}, func(ti *tailInfo) Offset { return ti.hs[mid(ti)].BaseOffset }, true, nil},
		{"empty-tail-after-roll", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			// A crash right after a roll: the old tail sealed (cut to its
			// exact size), the new segment created, nothing written to it.
			rewrite(t, fs, ti.path, func(b []byte) []byte { return b[:ti.size] })
			writeMemFile(t, fs, filepath.Join(ti.dir, SegmentBase(ti.end).fileName(logExt)), nil)
		}, nil, false, nil},
		{"leftover-tmp-files", func(t *testing.T, fs *dma.MemFS, ti *tailInfo) {
			writeMemFile(t, fs, filepath.Join(ti.dir, epochFile+".tmp"), []byte("garbage"))
		}, nil, false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, raws, _ := buildSealed(t, cfg, 100, 21)
			ti := describeTail(t, fs, "/data/t-0")
			if len(ti.hs) < 10 || len(ti.hs) == 100 {
				t.Fatalf("setup: tail segment has %d of 100 batches", len(ti.hs))
			}
			c.damage(t, fs, ti)
			want := ti.end
			if c.wantEnd != nil {
				want = c.wantEnd(ti)
			}
			ccfg := cfg
			var warns *int
			var msgs *[]string
			ccfg.Logger, warns, msgs = newWarnLogger()
			l, eng := memLog(t, fs, ccfg)
			if l.NextOffset() != want || l.HighWatermark() != want {
				t.Fatalf("recovered end %d (hw %d), want %d; log: %v", l.NextOffset(), l.HighWatermark(), want, *msgs)
			}
			if cut := *warns > 0; cut != c.cut {
				t.Fatalf("recovery reported a cut: %v, want %v; log: %v", cut, c.cut, *msgs)
			}
			var got []rawBatch
			for off := Offset(0); off < want; {
				if c.damaged != nil && off == ti.hs[c.damaged(ti)].BaseOffset {
					var ce *CorruptionError
					if _, err := readOnce(t, l, eng, off, 1<<20); !errors.As(err, &ce) || ce.Pos != FilePos(ti.pos[c.damaged(ti)]) {
						t.Fatalf("read of the damaged batch at %d: %v", off, err)
					}
					off = ti.hs[c.damaged(ti)+1].BaseOffset
					continue
				}
				res, err := readOnce(t, l, eng, off, 1<<20)
				if err != nil {
					t.Fatalf("read at %d: %v", off, err)
				}
				for _, b := range splitBatches(t, res.Data) {
					if b.h.BaseOffset != off {
						t.Fatalf("read at %d served %d", off, b.h.BaseOffset)
					}
					equalBatch(t, "recovered", b.data, raws[b.h.BaseOffset], b.h.BaseOffset)
					got = append(got, b)
					off = b.h.LastOffset() + 1
				}
			}
			if len(got) == 0 || got[len(got)-1].h.LastOffset()+1 != want {
				t.Fatalf("read %d batches ending before %d", len(got), want)
			}
			if len(*msgs) > 0 {
				t.Logf("recovery: %v", *msgs)
			}
			// Nothing but zeros after the end, in whole blocks at most.
			tail := l.active
			b := memFileBytes(t, fs, tail.path(logExt))
			if int64(len(b)) > dma.AlignUp(tail.size, 4096) || !allZero(b[tail.size:]) {
				t.Fatalf("after recovery the tail file holds %d bytes past its end %d (non-zero: %v)", int64(len(b))-tail.size, tail.size, !allZero(b[tail.size:]))
			}
			if c.name == "leftover-tmp-files" && fs.Exists(filepath.Join(ti.dir, epochFile+".tmp")) {
				t.Fatal("recovery left a .tmp file")
			}
			checkTimeLookups(t, l, eng, got)
			// The recovered log appends and recovers again without a cut.
			raw := makeBatch(1, 99999, []byte("after recovery"))
			var res AppendResult
			if err := l.Append(raw, 0, func(r AppendResult, err error) { res = r }); err != nil {
				t.Fatal(err)
			}
			drainLog(t, l, eng)
			if res.Base != want {
				t.Fatalf("first append after recovery at %d, want %d", res.Base, want)
			}
			ccfg.Logger, warns, msgs = newWarnLogger()
			l2, eng2 := memLog(t, fs.Crash(5), ccfg)
			if *warns != 0 || l2.NextOffset() != want+1 {
				t.Fatalf("second recovery: end %d (want %d), log %v", l2.NextOffset(), want+1, *msgs)
			}
			res2, err := readOnce(t, l2, eng2, want, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			equalBatch(t, "appended after recovery", res2.Data, raw, want)
		})
	}
}

// describeTail scans the last segment of a closed log.
func describeTail(t *testing.T, fs *dma.MemFS, dir string) *tailInfo {
	t.Helper()
	names, err := fs.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ti := &tailInfo{dir: dir}
	for _, n := range names {
		if b, ok := parseSegmentName(n); ok {
			ti.base = b
		}
	}
	ti.path = filepath.Join(dir, ti.base.fileName(logExt))
	ti.hs, ti.pos = segmentBatches(t, memFileBytes(t, fs, ti.path), ti.base)
	n := len(ti.hs) - 1
	ti.end = ti.hs[n].LastOffset() + 1
	ti.size = ti.pos[n] + int64(ti.hs[n].Size())
	return ti
}

// checkTimeLookups compares OffsetForTime with a linear search over got.
func checkTimeLookups(t *testing.T, l *Log, eng dma.Engine, got []rawBatch) {
	t.Helper()
	for i := 0; i < len(got); i += 3 {
		ts := got[i].h.MaxTimestamp
		want := Offset(-1)
		for _, b := range got {
			if b.h.MaxTimestamp >= ts {
				want = b.h.BaseOffset
				break
			}
		}
		var off Offset = -2
		l.OffsetForTime(ts, func(o Offset, _ int64, err error) {
			if err != nil {
				t.Fatal(err)
			}
			off = o
		})
		dma.Drain(eng)
		if off != want {
			t.Fatalf("OffsetForTime(%d) = %d, want %d", ts, off, want)
		}
	}
}

// TestReadSealedSegmentPadding: a sealed segment whose file ends in a few
// zero bytes after its last batch (shorter than a batch header) is read to
// its end and on into the next segment, instead of re-reading those bytes
// forever.
func TestReadSealedSegmentPadding(t *testing.T) {
	cfg := Config{SegmentBytes: 32 << 10}
	fs, raws, _ := buildSealed(t, cfg, 40, 8)
	path := filepath.Join("/data/t-0", SegmentBase(0).fileName(logExt))
	b := memFileBytes(t, fs, path)
	hs, _ := segmentBatches(t, b, 0)
	writeMemFile(t, fs, path, append(b, make([]byte, BatchHeaderSize-2)...))
	l, eng := memLog(t, fs, cfg)
	lastOff := hs[len(hs)-1].BaseOffset
	res, err := readOnce(t, l, eng, lastOff, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	bs := splitBatches(t, res.Data)
	if len(bs) != 1 || bs[0].h.BaseOffset != lastOff {
		t.Fatalf("read of the last batch served %d batches", len(bs))
	}
	equalBatch(t, "last batch", bs[0].data, raws[lastOff], lastOff)
	for _, b := range readRaw(t, l, eng, 0, 1<<20) {
		equalBatch(t, "whole log", b.data, raws[b.h.BaseOffset], b.h.BaseOffset)
	}
}
