package shard

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/strand-io/strand/dma"
)

// A compacted log refuses a batch holding any record without a key,
// whatever its codec, and stores nothing of it; a keyed batch and a
// tombstone (key, null value) pass, and so does a keyless batch once the
// policy no longer compacts.
func TestKeylessRecordRefusedByCompactedLog(t *testing.T) {
	for _, codec := range []int16{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd} {
		t.Run(fmt.Sprint("codec", codec), func(t *testing.T) {
			fs := dma.NewMemFS(512, 1)
			cfg := Config{Dir: "/p", Logger: quietLogger(), Cleanup: PolicyCompactDelete}
			l, eng := memLog(t, fs, cfg)
			defer abandon(l)
			const now = 1_000_000
			appendWait(t, l, eng, keyedBatch(t, []kv{{[]byte("a"), []byte("1")}, {[]byte("b"), nil}}, now, codec, -1, 0), now)
			bad := keyedBatch(t, []kv{{[]byte("c"), []byte("2")}, {nil, []byte("keyless")}}, now, codec, -1, 0)
			err := l.Append(bad, now, func(AppendResult, error) { t.Error("a refused batch was acknowledged") })
			if !errors.Is(err, ErrKeylessCompacted) {
				t.Fatalf("keyless record: %v, want ErrKeylessCompacted", err)
			}
			if err := dma.Drain(eng); err != nil {
				t.Fatal(err)
			}
			if l.NextOffset() != 2 {
				t.Fatalf("next offset %d after a refused batch, want 2", l.NextOffset())
			}
			// AppendValidated (the broker's path) refuses it too.
			if err := l.AppendValidated(bad, now, func(AppendResult, error) {}); !errors.Is(err, ErrKeylessCompacted) {
				t.Fatalf("AppendValidated: %v", err)
			}
			c := l.cfg
			c.Cleanup = PolicyDelete
			l.Reconfigure(c)
			if res := appendWait(t, l, eng, bad, now); res.Base != 2 {
				t.Fatalf("delete policy: keyless batch at %d", res.Base)
			}
		})
	}
}

// CreateTime bounds: a batch with any record further before or after the
// broker's clock than the bounds is refused whole; records exactly at a
// bound, and records without a timestamp (-1), pass; LogAppendTime logs
// are never checked.
func TestTimestampBounds(t *testing.T) {
	const now = 10_000_000
	fs := dma.NewMemFS(512, 1)
	cfg := Config{Dir: "/p", Logger: quietLogger(), BoundTimestamps: true, TimestampBeforeMaxMs: 1000, TimestampAfterMaxMs: 500}
	l, eng := memLog(t, fs, cfg)
	defer abandon(l)
	recs := func(n int) []kv {
		out := make([]kv, n)
		for i := range out {
			out[i] = kv{[]byte{byte('a' + i)}, []byte("v")}
		}
		return out
	}
	// keyedBatch stamps ts, ts+1, ...: three records span 2 ms.
	for _, tc := range []struct {
		ts   int64
		want error
	}{
		{now - 1000, nil}, // first record exactly at the lower bound
		{now - 1001, ErrTimestampOutOfRange},
		{now + 498, nil}, // last record exactly at the upper bound
		{now + 499, ErrTimestampOutOfRange},
		{-1, ErrTimestampOutOfRange}, // -1 is only the first; the others are 0 and 1
	} {
		before := l.NextOffset()
		b := keyedBatch(t, recs(3), tc.ts, codecZstd, -1, 0)
		err := l.Append(b, now, func(AppendResult, error) {})
		if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Fatalf("batch at %d: %v, want %v", tc.ts, err, tc.want)
		}
		if err := dma.Drain(eng); err != nil {
			t.Fatal(err)
		}
		if grew := l.NextOffset() != before; grew != (tc.want == nil) {
			t.Fatalf("batch at %d: stored %v", tc.ts, grew)
		}
	}
	if res := appendWait(t, l, eng, keyedBatch(t, recs(1), -1, codecNone, -1, 0), now); res.Base < 0 {
		t.Fatal("a record without a timestamp was refused")
	}
	c := l.cfg
	c.LogAppendTime = true
	l.Reconfigure(c)
	appendWait(t, l, eng, keyedBatch(t, recs(2), 5, codecNone, -1, 0), now)
	c.LogAppendTime, c.TimestampBeforeMaxMs, c.TimestampAfterMaxMs = false, math.MaxInt64, math.MaxInt64
	l.Reconfigure(c)
	appendWait(t, l, eng, keyedBatch(t, recs(2), 5, codecNone, -1, 0), now) // unbounded: no overflow
}
