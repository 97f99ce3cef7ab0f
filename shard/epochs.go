package shard

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/strand-io/strand/dma"
)

// epochCache maps each leader epoch to the first offset written in it, as
// Kafka's leader-epoch-checkpoint does. Replication uses it to find where a
// follower's log diverges from a new leader's (OffsetForLeaderEpoch,
// KIP-101/279).
//
// File format: Kafka's leader-epoch-checkpoint, text, replaced atomically
// (writeFileDurably: temp file, fsync, rename, directory fsync):
//
//	0\n                       version
//	<n>\n                     number of entries
//	<epoch> <startOffset>\n   n times, epochs and start offsets ascending
//
// Rules that keep the cache true to the log, at every crash point:
//   - an entry is persisted before any batch of its epoch is staged, so a
//     recovered log never holds a batch whose epoch the cache lacks (the
//     scan refuses epochs above the newest entry);
//   - Open drops entries that start at or past the recovered log end (a
//     crash may take the batches of an epoch and leave its entry, or stop
//     a truncation between the log cut and the cache update);
//   - entries start strictly ascending; an entry whose start is at or past
//     a new one's is dropped, as Kafka's assign does, so an epoch that
//     never got a batch (a leader elected and deposed before any append)
//     does not shadow the one that did.
type epochCache struct {
	fs      dma.FS
	path    string
	entries []epochEntry
}

type epochEntry struct {
	epoch Epoch
	start Offset
}

const epochFile = "leader-epoch-checkpoint"

func loadEpochs(fs dma.FS, dir string) (epochCache, error) {
	c := epochCache{fs: fs, path: filepath.Join(dir, epochFile)}
	f, err := fs.OpenFile(c.path, os.O_RDONLY, 0, false)
	if err != nil {
		if os.IsNotExist(err) {
			return c, nil
		}
		return c, err
	}
	defer f.Close()
	b, err := readAll(f)
	if err != nil {
		return c, err
	}
	entries, err := decodeEpochs(b)
	if err != nil {
		// The file is only ever replaced whole, so damage is not a torn
		// write: refuse to guess, as Kafka does.
		return c, fmt.Errorf("shard: %s: %w", c.path, err)
	}
	c.entries = entries
	return c, nil
}

func decodeEpochs(b []byte) ([]epochEntry, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return sc.Text(), true
	}
	v, ok := line()
	if !ok || v != "0" {
		return nil, fmt.Errorf("version %q, want 0", v)
	}
	ns, _ := line()
	n, err := strconv.Atoi(ns)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("entry count %q", ns)
	}
	var out []epochEntry
	for {
		s, ok := line()
		if !ok {
			break
		}
		f := strings.Fields(s)
		if len(f) != 2 {
			return nil, fmt.Errorf("bad line %q", s)
		}
		e, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || e < 0 || o < 0 {
			return nil, fmt.Errorf("bad line %q", s)
		}
		if k := len(out); k > 0 && (Epoch(e) <= out[k-1].epoch || Offset(o) <= out[k-1].start) {
			return nil, fmt.Errorf("entry %q does not follow %d %d", s, out[k-1].epoch, out[k-1].start)
		}
		out = append(out, epochEntry{Epoch(e), Offset(o)})
	}
	if len(out) != n {
		return nil, fmt.Errorf("%d entries, header says %d", len(out), n)
	}
	return out, nil
}

func encodeEpochs(entries []epochEntry) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(entries))
	for _, e := range entries {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.start)
	}
	return b.Bytes()
}

// current is the newest epoch known, 0 for an empty cache (a log that
// never had a leader epoch stamps 0, as Kafka's first leader does).
func (c *epochCache) current() Epoch {
	if len(c.entries) == 0 {
		return 0
	}
	return c.entries[len(c.entries)-1].epoch
}

// epochAt is the epoch of the batch holding offset (the newest entry
// starting at or below it), -1 if no entry does.
func (c *epochCache) epochAt(offset Offset) Epoch {
	for i := len(c.entries) - 1; i >= 0; i-- {
		if c.entries[i].start <= offset {
			return c.entries[i].epoch
		}
	}
	return -1
}

// assign records that epoch starts at offset start, durably, before the
// caller stages a batch of it. An epoch older than the newest one is a
// protocol error upstream and is refused. Entries starting at or past
// start describe no batch (the log ends at start) and go.
func (c *epochCache) assign(epoch Epoch, start Offset) error {
	n := len(c.entries)
	if n > 0 && epoch == c.entries[n-1].epoch {
		return nil
	}
	keep := n
	for keep > 0 && c.entries[keep-1].start >= start {
		keep--
	}
	if keep > 0 && epoch <= c.entries[keep-1].epoch {
		return fmt.Errorf("shard: leader epoch %d at offset %d is not newer than epoch %d from offset %d",
			epoch, start, c.entries[keep-1].epoch, c.entries[keep-1].start)
	}
	next := append(c.entries[:keep:keep], epochEntry{epoch, start})
	if err := c.write(next); err != nil {
		return err
	}
	c.entries = next
	return nil
}

// truncateFrom drops epochs that start at or after offset.
func (c *epochCache) truncateFrom(offset Offset) error {
	i := len(c.entries)
	for i > 0 && c.entries[i-1].start >= offset {
		i--
	}
	if i == len(c.entries) {
		return nil
	}
	if err := c.write(c.entries[:i]); err != nil {
		return err
	}
	c.entries = c.entries[:i]
	return nil
}

// trimStart forgets what lies below the log start, as Kafka's
// truncateFromStart: entries starting below it go, except the newest of
// them, which now starts at it. In memory only: the file may keep the
// older entries until its next write, and Open trims them again, so a
// retention pass costs no fsync.
func (c *epochCache) trimStart(logStart Offset) {
	i := len(c.entries) - 1
	for i >= 0 && c.entries[i].start > logStart {
		i--
	}
	if i < 0 {
		return
	}
	c.entries = c.entries[i:]
	c.entries[0].start = logStart
}

// clear forgets every epoch, durably: a truncation that keeps no record
// keeps no epoch either (Kafka's truncateFullyAndStartAt).
func (c *epochCache) clear() error {
	if len(c.entries) == 0 {
		return nil
	}
	if err := c.write(nil); err != nil {
		return err
	}
	c.entries = nil
	return nil
}

// endOffset answers OffsetForLeaderEpoch for requested, exactly as Kafka's
// LeaderEpochFileCache.endOffsetFor (KIP-101, KIP-279):
//
//	requested                         answer
//	-1 (undefined), or no entries      (-1, -1)
//	the newest epoch                   (newest, logEnd)
//	above the newest                   (-1, -1)
//	below the oldest                   (requested, oldest's start): the log
//	                                   before it is gone; fetch from there
//	otherwise                          (largest epoch <= requested, start
//	                                   of the next larger epoch)
func (c *epochCache) endOffset(requested Epoch, logEnd Offset) (Epoch, Offset) {
	n := len(c.entries)
	switch {
	case requested < 0 || n == 0:
		return -1, -1
	case requested == c.entries[n-1].epoch:
		return requested, logEnd
	case requested > c.entries[n-1].epoch:
		return -1, -1
	}
	i := n - 1
	for i >= 0 && c.entries[i].epoch > requested {
		i--
	}
	if i < 0 {
		return requested, c.entries[0].start
	}
	return c.entries[i].epoch, c.entries[i+1].start
}

func (c *epochCache) write(entries []epochEntry) error {
	return writeFileDurably(c.fs, c.path, encodeEpochs(entries))
}

// writeFileDurably replaces path with data so that a crash leaves either
// the old file or the new one: write a temporary file, fsync it, rename it
// over path, fsync the directory.
func writeFileDurably(fs dma.FS, path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644, false)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	if err := fs.Rename(tmp, path); err != nil {
		return err
	}
	return fs.SyncDir(filepath.Dir(path))
}

// SetLeaderEpoch stamps later appends with epoch and records, durably,
// that it starts at the log end. Epochs only grow. A new leader calls it
// before its first append, as Kafka's leader assigns its epoch on
// election, so that OffsetForLeaderEpoch for an older epoch is answered
// with where that epoch ended even before the new one has a batch.
func (l *Log) SetLeaderEpoch(epoch Epoch) error { return l.epochs.assign(epoch, l.next) }

// LeaderEpoch is the newest epoch the log knows: the one stamped on new
// batches by Append.
func (l *Log) LeaderEpoch() Epoch { return l.epochs.current() }

// EndOffsetForEpoch answers OffsetForLeaderEpoch from the leader-epoch
// cache: the largest epoch at or below epoch known to this log and the
// offset where it ends, by Kafka's rules (epochCache.endOffset); (-1, -1)
// when there is no answer.
//
// A log whose cache is empty has only ever been written by Append under
// epoch 0 (what an empty cache stamps), as a partition's first leader
// writes in Kafka, where that leader's election records (0, 0): it answers
// as if its cache held epoch 0 from the log start. Otherwise a consumer
// checking an offset it read under epoch 0 (KIP-320) would be told the
// epoch is unknown and reset its position.
func (l *Log) EndOffsetForEpoch(epoch Epoch) (Epoch, Offset) {
	if len(l.epochs.entries) == 0 {
		c := epochCache{entries: []epochEntry{{0, l.logStart}}}
		return c.endOffset(epoch, l.next)
	}
	return l.epochs.endOffset(epoch, l.next)
}
