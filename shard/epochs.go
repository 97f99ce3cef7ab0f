package shard

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/strand-io/strand/dma"
)

// epochCache maps each leader epoch to the first offset written in it, as
// Kafka's leader-epoch-checkpoint does. Replication uses it to find where a
// follower's log diverges from a new leader's (OffsetForLeaderEpoch).
//
// File format (text, replaced atomically):  "0\n<n>\n" then n lines "<epoch> <startOffset>".
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
	sc := bufio.NewScanner(bytes.NewReader(b))
	var version, n int
	if sc.Scan() {
		fmt.Sscan(sc.Text(), &version)
	}
	if sc.Scan() {
		fmt.Sscan(sc.Text(), &n)
	}
	for sc.Scan() {
		var e epochEntry
		if _, err := fmt.Sscan(sc.Text(), &e.epoch, &e.start); err != nil {
			return c, fmt.Errorf("shard: bad line in %s: %q", c.path, sc.Text())
		}
		c.entries = append(c.entries, e)
	}
	if len(c.entries) != n {
		return c, fmt.Errorf("shard: %s has %d entries, header says %d", c.path, len(c.entries), n)
	}
	return c, nil
}

func (c *epochCache) current() Epoch {
	if len(c.entries) == 0 {
		return 0
	}
	return c.entries[len(c.entries)-1].epoch
}

// assign records that epoch starts at offset start; a lower epoch than the
// current one is a protocol error upstream and is refused.
func (c *epochCache) assign(epoch Epoch, start Offset) error {
	if n := len(c.entries); n > 0 {
		if last := c.entries[n-1]; epoch < last.epoch {
			return fmt.Errorf("shard: leader epoch %d is older than %d", epoch, last.epoch)
		} else if epoch == last.epoch {
			return nil
		}
	}
	c.entries = append(c.entries, epochEntry{epoch, start})
	return c.persist()
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
	c.entries = c.entries[:i]
	return c.persist()
}

// endOffset returns the first offset after epoch's records: the start of
// the next higher epoch, or logEnd for the current one. Unknown (lower than
// any) epochs return -1.
func (c *epochCache) endOffset(epoch Epoch, logEnd Offset) (Epoch, Offset) {
	for i := len(c.entries) - 1; i >= 0; i-- {
		if c.entries[i].epoch <= epoch {
			if i == len(c.entries)-1 {
				return c.entries[i].epoch, logEnd
			}
			return c.entries[i].epoch, c.entries[i+1].start
		}
	}
	return -1, -1
}

func (c *epochCache) persist() error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(c.entries))
	for _, e := range c.entries {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.start)
	}
	return writeFileDurably(c.fs, c.path, b.Bytes())
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

// SetLeaderEpoch stamps later appends with epoch and records where it
// starts. Epochs only grow.
func (l *Log) SetLeaderEpoch(epoch Epoch) error { return l.epochs.assign(epoch, l.next) }

// LeaderEpoch is the epoch stamped on new batches.
func (l *Log) LeaderEpoch() Epoch { return l.epochs.current() }

// EpochEndOffset answers OffsetForLeaderEpoch: the largest epoch <= epoch
// known to this log and the offset where it ends.
func (l *Log) EpochEndOffset(epoch Epoch) (Epoch, Offset) { return l.epochs.endOffset(epoch, l.next) }
