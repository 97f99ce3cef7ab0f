package shard

import (
	"errors"
	"os"

	"github.com/strand-io/strand/dma"
)

// DescriptorsPerLog is how many file descriptors an open Log holds while
// it is idle: its active segment's .log file. Sealed segments' files are
// held by the core's FileCache, which is bounded on its own; index files
// and the log directory are opened only for the write that needs them.
// A broker's descriptor budget is DescriptorsPerLog per partition plus
// each core's FileCache bound.
const DescriptorsPerLog = 1

// DescriptorsPerLogPeak bounds what one Log holds at any instant: the
// active .log, both index files during a checkpoint, a producer snapshot's
// temporary file and the directory while it is written, and the file of a
// segment sealed under a read in flight when the FileCache had no room for
// it (closed when that read ends).
const DescriptorsPerLogPeak = 6

// privateFileCacheFiles bounds the cache of a Log opened without a shared
// one (tests, tools).
const privateFileCacheFiles = 4

// errSegmentGone: a sealed segment was deleted (retention, truncation)
// while a read waited for its file; the read starts again from the log.
var errSegmentGone = errors.New("shard: segment deleted")

// FileCache keeps the files of sealed segments open for the logs of one
// core, at most Max at a time, and closes the least recently used when it
// needs room. A file with reads in flight is never closed (that would let a
// queued io_uring read run on whatever file next gets the descriptor
// number): when every cached file is in use, a read waits for the first
// one to be released. Like the read pool, it belongs to one core and is
// not goroutine-safe.
type FileCache struct {
	max        int
	open       int
	head, tail *segment // most and least recently used
	waiters    []fileWaiter
}

type fileWaiter struct {
	l   *Log
	seg *segment
	fn  func(error)
}

// NewFileCache returns a cache holding at most max files (at least 1).
func NewFileCache(files int) *FileCache { return &FileCache{max: max(files, 1)} }

// Len is the number of files open in the cache now; it never exceeds Max.
func (c *FileCache) Len() int { return c.open }

// Max is the cache's bound.
func (c *FileCache) Max() int { return c.max }

// Waiting is the number of reads waiting for a file.
func (c *FileCache) Waiting() int { return len(c.waiters) }

// acquire makes s.file usable for a read that has already counted itself
// in s.reads, then calls fn (at once when the file is open or there is
// room, or when a cached file is released).
func (c *FileCache) acquire(l *Log, s *segment, fn func(error)) {
	if s.file != nil {
		if s.cache == c {
			c.unlink(s)
			c.pushFront(s)
		}
		fn(nil)
		return
	}
	if len(c.waiters) == 0 && (c.open < c.max || c.evictIdle()) {
		fn(c.openInto(l, s))
		return
	}
	c.waiters = append(c.waiters, fileWaiter{l, s, fn})
}

// openInto opens s's file and caches it; the caller made room.
func (c *FileCache) openInto(l *Log, s *segment) error {
	if s.unlinked {
		return errSegmentGone
	}
	if s.file != nil {
		return nil
	}
	// Read-write, so that a truncation that makes this segment active
	// again can take the file over while reads still use it.
	f, err := l.fs.OpenFile(s.path(logExt), os.O_RDWR, 0, true)
	if err != nil {
		return err
	}
	s.file = f
	c.open++
	s.cache = c
	c.pushFront(s)
	return nil
}

// adopt takes the file of a segment that was just sealed. Without room,
// the file is closed, or, if reads still use it, closed when they end.
func (c *FileCache) adopt(s *segment) {
	if c.open >= c.max && !c.evictIdle() {
		if s.reads > 0 {
			s.closeOnRelease = true
			return
		}
		s.file.Close()
		s.file = nil
		return
	}
	c.open++
	s.cache = c
	c.pushFront(s)
}

// detach forgets s without closing its file: the caller closes it, or
// keeps it as the active segment's. The freed slot goes to a waiter.
func (c *FileCache) detach(s *segment) {
	c.unlink(s)
	s.cache = nil
	c.open--
	c.serve()
}

// released is called when the last read of a cached segment ends.
func (c *FileCache) released(s *segment) {
	if len(c.waiters) > 0 {
		c.serve()
	}
}

// evictIdle closes the least recently used file no read is using.
func (c *FileCache) evictIdle() bool {
	for s := c.tail; s != nil; s = s.prev {
		if s.reads == 0 {
			c.unlink(s)
			s.cache = nil
			c.open--
			s.file.Close()
			s.file = nil
			return true
		}
	}
	return false
}

// serve hands free or freeable slots to waiting reads, oldest first.
func (c *FileCache) serve() {
	for len(c.waiters) > 0 {
		w := c.waiters[0]
		if w.seg.file == nil && !w.seg.unlinked && c.open >= c.max && !c.evictIdle() {
			return
		}
		c.waiters[0] = fileWaiter{}
		c.waiters = c.waiters[1:]
		w.fn(c.openInto(w.l, w.seg))
	}
}

// forget fails the waiting reads of a log that is closing.
func (c *FileCache) forget(l *Log) {
	kept := c.waiters[:0]
	var failed []fileWaiter
	for _, w := range c.waiters {
		if w.l == l {
			failed = append(failed, w)
		} else {
			kept = append(kept, w)
		}
	}
	clear(c.waiters[len(kept):])
	c.waiters = kept
	for _, w := range failed {
		w.fn(ErrClosed)
	}
}

func (c *FileCache) pushFront(s *segment) {
	s.prev, s.next = nil, c.head
	if c.head != nil {
		c.head.prev = s
	}
	c.head = s
	if c.tail == nil {
		c.tail = s
	}
}

func (c *FileCache) unlink(s *segment) {
	if s.prev != nil {
		s.prev.next = s.next
	} else if c.head == s {
		c.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else if c.tail == s {
		c.tail = s.prev
	}
	s.prev, s.next = nil, nil
}

// pinFile gives a read the file of seg, counting it in seg.reads; fn runs
// once the file is open (or with the error that prevents it). The read
// ends with releaseRead.
func (l *Log) pinFile(seg *segment, fn func(error)) {
	seg.reads++
	l.files.acquire(l, seg, func(err error) {
		if err == nil && seg.unlinked && seg.file == nil {
			err = errSegmentGone
		}
		fn(err)
	})
}

// segFileSync returns seg's file for a synchronous scan (recovery,
// truncation, producer replay), opening a sealed one just for the call
// without the FileCache: Open runs off the core that owns the cache.
func (l *Log) segFileSync(seg *segment) (dma.File, func(), error) {
	if seg.file != nil {
		return seg.file, func() {}, nil
	}
	f, err := l.fs.OpenFile(seg.path(logExt), os.O_RDONLY, 0, true)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// holdFile makes seg's file the log's own again (seg becomes the active
// segment after a truncation), taking it out of the cache or opening it.
func (l *Log) holdFile(seg *segment) error {
	seg.closeOnRelease = false
	if seg.cache != nil {
		seg.cache.detach(seg) // the file stays open: reads may still use it
	}
	if seg.file != nil {
		return nil
	}
	f, err := l.fs.OpenFile(seg.path(logExt), os.O_RDWR, 0o644, true)
	if err != nil {
		return err
	}
	seg.file = f
	return nil
}
