package dma

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// MemFS is an in-memory FS for tests. Like a disk with a volatile cache, it
// tracks which bytes are durable: a write becomes durable at the next Sync of
// its file, and Crash returns the state after power loss, in which every
// unsynced write may be missing, present, or torn at sector granularity.
//
// Metadata operations (truncate, allocate) are treated as durable at once.
// Names (create, rename, remove) are not, as on a real file system: a name
// change survives a crash only once its directory has been synced, and until
// then the crash finds the old name (or none) pointing at the file's durable
// bytes. Clearing VolatileNames makes name changes durable at once too.
type MemFS struct {
	files map[string]*memNode
	// durableNames is the namespace a crash finds.
	durableNames map[string]*memNode
	dirs         map[string]bool
	// VolatileNames (set by NewMemFS) makes name changes durable only at
	// SyncDir.
	VolatileNames bool
	align         int
	direct        bool
	Faults        Faults
	rng           *rand.Rand
	// Reorder shuffles the execution and completion order of operations
	// submitted in the same Poll, as a real device queue may, and lets a
	// random part of them stay in flight until a later Poll.
	Reorder bool
	// Capacity, when positive, is the size of the simulated disk: writes
	// and allocations that would take the files' total space past it fail
	// with ENOSPC, and removing or truncating files gives space back.
	Capacity int64
	engines  []*memEngine
	open     int // descriptors held: files and directories opened, not closed
}

// Faults injects failures into a MemFS. Counters count down as they fire.
type Faults struct {
	FailSyncs      int   // the next N syncs fail with EIO
	NoSpaceAfter   int64 // writes that would grow total bytes past this fail with ENOSPC (0 = off)
	ShortWrites    int   // the next N writes stop half-way and report ErrShortWrite
	bytesAllocated int64
}

type memNode struct {
	alloc    int64 // bytes reserved by Allocate (KEEP_SIZE), counted against Capacity
	data     []byte
	durable  []byte
	unsynced []memWrite
}

type memWrite struct {
	off  int64
	data []byte
}

// NewMemFS returns an empty in-memory FS that behaves like an O_DIRECT
// capable file system with the given alignment.
func NewMemFS(align int, seed int64) *MemFS {
	return &MemFS{files: map[string]*memNode{}, durableNames: map[string]*memNode{}, dirs: map[string]bool{"/": true}, align: align, direct: true, rng: rand.New(rand.NewSource(seed)), VolatileNames: true}
}

// Crash returns the file system as it would be found after a power cut now.
// The receiver is left untouched so the test can compare.
func (m *MemFS) Crash(seed int64) *MemFS {
	rng := rand.New(rand.NewSource(seed))
	out := &MemFS{files: map[string]*memNode{}, durableNames: map[string]*memNode{}, dirs: map[string]bool{}, align: m.align, direct: m.direct, rng: rng, Reorder: m.Reorder, VolatileNames: m.VolatileNames}
	for d := range m.dirs {
		out.dirs[d] = true
	}
	inflight := map[*memNode][]memWrite{}
	for _, e := range m.engines {
		for _, op := range e.queue {
			if op.kind == opWrite {
				inflight[op.f.node] = append(inflight[op.f.node], memWrite{off: op.off, data: op.buf})
			}
		}
	}
	// Visit files in name order so that a seed always gives the same image.
	names := make([]string, 0, len(m.durableNames))
	for name := range m.durableNames {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n := m.durableNames[name]
		img := append([]byte(nil), n.durable...)
		// Writes in flight at the crash may have reached the disk too.
		for _, w := range append(append([]memWrite(nil), n.unsynced...), inflight[n]...) {
			switch rng.Intn(3) {
			case 0: // lost in the cache
			case 1:
				img = writeInto(img, w.off, w.data)
			case 2: // torn: a random subset of its 512-byte sectors reached the disk
				for s := 0; s < len(w.data); s += 512 {
					if rng.Intn(2) == 0 {
						end := min(s+512, len(w.data))
						img = writeInto(img, w.off+int64(s), w.data[s:end])
					}
				}
			}
		}
		if int64(len(img)) > int64(len(n.data)) {
			img = img[:len(n.data)]
		}
		out.files[name] = &memNode{data: img, durable: append([]byte(nil), img...)}
		out.durableNames[name] = out.files[name]
	}
	return out
}

func writeInto(img []byte, off int64, p []byte) []byte {
	if end := off + int64(len(p)); end > int64(len(img)) {
		img = append(img, make([]byte, end-int64(len(img)))...)
	}
	copy(img[off:], p)
	return img
}

// Corrupt flips one byte of a file in place, durably, as bit rot would.
func (m *MemFS) Corrupt(path string, off int64) {
	n := m.files[filepath.Clean(path)]
	n.data[off] ^= 0xff
	if off < int64(len(n.durable)) {
		n.durable[off] ^= 0xff
	}
}

func (m *MemFS) OpenFile(path string, flag int, perm os.FileMode, direct bool) (File, error) {
	path = filepath.Clean(path)
	if !m.dirs[filepath.Dir(path)] {
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
	}
	n, ok := m.files[path]
	switch {
	case !ok && flag&os.O_CREATE == 0:
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
	case ok && flag&os.O_EXCL != 0:
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.EEXIST}
	case !ok:
		n = &memNode{}
		m.files[path] = n
		m.nameChanged(path)
	}
	if flag&os.O_TRUNC != 0 {
		n.data, n.durable, n.unsynced, n.alloc = nil, nil, nil, 0
	}
	m.open++
	return &memFile{fs: m, node: n, name: path, direct: direct && m.direct}, nil
}

func (m *MemFS) MkdirAll(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		m.dirs[d] = true
		if d == "/" || d == "." {
			return nil
		}
	}
}

func (m *MemFS) Remove(path string) error {
	path = filepath.Clean(path)
	if _, ok := m.files[path]; ok {
		delete(m.files, path)
		m.nameChanged(path)
		return nil
	}
	if m.dirs[path] {
		delete(m.dirs, path)
		return nil
	}
	return &os.PathError{Op: "remove", Path: path, Err: syscall.ENOENT}
}

func (m *MemFS) RemoveAll(path string) error {
	path = filepath.Clean(path)
	for name := range m.files {
		if name == path || strings.HasPrefix(name, path+"/") {
			delete(m.files, name)
			m.nameChanged(name)
		}
	}
	for d := range m.dirs {
		if d == path || strings.HasPrefix(d, path+"/") {
			delete(m.dirs, d)
		}
	}
	return nil
}

func (m *MemFS) Rename(from, to string) error {
	from, to = filepath.Clean(from), filepath.Clean(to)
	n, ok := m.files[from]
	if !ok {
		return &os.PathError{Op: "rename", Path: from, Err: syscall.ENOENT}
	}
	delete(m.files, from)
	m.files[to] = n
	m.nameChanged(from)
	m.nameChanged(to)
	return nil
}

// nameChanged makes the current state of name durable at once, unless
// VolatileNames defers that to SyncDir.
func (m *MemFS) nameChanged(name string) {
	if !m.VolatileNames {
		m.syncName(name)
	}
}

func (m *MemFS) syncName(name string) {
	if n, ok := m.files[name]; ok {
		m.durableNames[name] = n
	} else {
		delete(m.durableNames, name)
	}
}

func (m *MemFS) ReadDir(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	if !m.dirs[dir] {
		return nil, &os.PathError{Op: "readdir", Path: dir, Err: syscall.ENOENT}
	}
	var names []string
	for name := range m.files {
		if filepath.Dir(name) == dir {
			names = append(names, filepath.Base(name))
		}
	}
	for d := range m.dirs {
		if d != dir && filepath.Dir(d) == dir {
			names = append(names, filepath.Base(d))
		}
	}
	sort.Strings(names)
	return names, nil
}

// SyncDir makes every name change in dir durable.
func (m *MemFS) SyncDir(dir string) error {
	dir = filepath.Clean(dir)
	for _, names := range []map[string]*memNode{m.files, m.durableNames} {
		for name := range names {
			if filepath.Dir(name) == dir {
				m.syncName(name)
			}
		}
	}
	return nil
}

func (m *MemFS) Exists(path string) bool {
	path = filepath.Clean(path)
	_, ok := m.files[path]
	return ok || m.dirs[path]
}

type memFile struct {
	fs     *MemFS
	node   *memNode
	name   string
	direct bool
	closed bool
	dir    bool // from OpenDir: Sync is SyncDir, writes fail
}

func (f *memFile) isDir() bool { return f.dir }

// OpenDir returns a handle on dir whose Sync (directly or through an
// engine) is SyncDir(dir).
func (m *MemFS) OpenDir(dir string) (File, error) {
	dir = filepath.Clean(dir)
	if !m.dirs[dir] {
		return nil, &os.PathError{Op: "open", Path: dir, Err: syscall.ENOENT}
	}
	m.open++
	return &memFile{fs: m, node: &memNode{}, name: dir, dir: true}, nil
}

func (f *memFile) Name() string         { return f.name }
func (f *memFile) Fd() int              { return -1 }
func (f *memFile) Direct() bool         { return f.direct }
func (f *memFile) Align() int           { return f.fs.align }
func (f *memFile) Size() (int64, error) { return int64(len(f.node.data)), nil }

// Truncate changes the size durably, as a metadata operation, but it does
// not make earlier unsynced writes durable: those below the new size stay
// pending (cut at it), those past it are gone.
func (f *memFile) Truncate(size int64) error {
	n := f.node
	if err := f.fs.reserve(n, size); err != nil {
		return &os.PathError{Op: "ftruncate", Path: f.name, Err: err}
	}
	n.alloc = 0 // a truncate releases the blocks kept past the end
	n.data = resize(n.data, size)
	n.durable = resize(n.durable, size)
	kept := n.unsynced[:0]
	for _, w := range n.unsynced {
		if w.off >= size {
			continue
		}
		if end := w.off + int64(len(w.data)); end > size {
			w.data = w.data[:size-w.off]
		}
		kept = append(kept, w)
	}
	n.unsynced = kept
	return nil
}

func resize(b []byte, size int64) []byte {
	if size <= int64(len(b)) {
		return b[:size]
	}
	return append(b, make([]byte, size-int64(len(b)))...)
}

func (f *memFile) Allocate(off, n int64) error {
	if err := f.fs.reserve(f.node, off+n); err != nil {
		return &os.PathError{Op: "fallocate", Path: f.name, Err: err}
	}
	f.node.alloc = max(f.node.alloc, off+n)
	return nil
}

func (f *memFile) checkAlign(p []byte, off int64) error {
	if !f.direct {
		return nil
	}
	a := int64(f.fs.align)
	if off%a != 0 || int64(len(p))%a != 0 || !IsAligned(p, f.fs.align) {
		return fmt.Errorf("%s: unaligned direct I/O (off %d len %d): %w", f.name, off, len(p), syscall.EINVAL)
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, &os.PathError{Op: "read", Path: f.name, Err: syscall.EBADF}
	}
	if err := f.checkAlign(p, off); err != nil {
		return 0, err
	}
	if off >= int64(len(f.node.data)) {
		return 0, nil
	}
	return copy(p, f.node.data[off:]), nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if f.dir {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.EISDIR}
	}
	if f.closed {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.EBADF}
	}
	if err := f.checkAlign(p, off); err != nil {
		return 0, err
	}
	if err := f.fs.reserve(f.node, off+int64(len(p))); err != nil {
		return 0, err
	}
	flt := &f.fs.Faults
	if grow := off + int64(len(p)) - int64(len(f.node.data)); grow > 0 && flt.NoSpaceAfter > 0 {
		if flt.bytesAllocated+grow > flt.NoSpaceAfter {
			return 0, syscall.ENOSPC
		}
		flt.bytesAllocated += grow
	}
	if flt.ShortWrites > 0 && len(p) > f.fs.align {
		flt.ShortWrites--
		half := len(p) / 2 &^ (f.fs.align - 1)
		f.apply(p[:half], off)
		return half, ErrShortWrite
	}
	f.apply(p, off)
	return len(p), nil
}

func (f *memFile) apply(p []byte, off int64) {
	f.node.data = writeInto(f.node.data, off, p)
	f.node.unsynced = append(f.node.unsynced, memWrite{off: off, data: append([]byte(nil), p...)})
}

func (f *memFile) Sync() error {
	if f.fs.Faults.FailSyncs > 0 {
		f.fs.Faults.FailSyncs--
		return syscall.EIO
	}
	if f.dir {
		return f.fs.SyncDir(f.name)
	}
	f.node.durable = append(f.node.durable[:0], f.node.data...)
	f.node.unsynced = nil
	return nil
}

func (f *memFile) Close() error {
	if !f.closed {
		f.closed = true
		f.fs.open--
	}
	return nil
}

// OpenFiles counts the files and directories opened and not yet closed: the
// descriptors the same calls would hold on a real file system.
func (m *MemFS) OpenFiles() int { return m.open }

// used is the space the files take: their data, or their allocation when
// larger.
func (m *MemFS) used() int64 {
	var n int64
	seen := map[*memNode]bool{}
	for _, node := range m.files {
		if !seen[node] {
			seen[node] = true
			n += max(int64(len(node.data)), node.alloc)
		}
	}
	return n
}

// FreeBytes reports Capacity minus the space used, or a large number
// when Capacity is not set.
func (m *MemFS) FreeBytes(string) (int64, error) {
	if m.Capacity <= 0 {
		return 1 << 50, nil
	}
	return max(m.Capacity-m.used(), 0), nil
}

// reserve fails with ENOSPC when growing node to end would pass Capacity.
func (m *MemFS) reserve(node *memNode, end int64) error {
	grow := end - max(int64(len(node.data)), node.alloc)
	if m.Capacity <= 0 || grow <= 0 {
		return nil
	}
	if m.used()+grow > m.Capacity {
		return syscall.ENOSPC
	}
	return nil
}

// NewEngine returns an Engine over this MemFS. Operations run inside Poll,
// shuffled when Reorder is set.
func (m *MemFS) NewEngine() Engine {
	e := &memEngine{fs: m}
	m.engines = append(m.engines, e)
	return e
}

type memOp struct {
	ioOp
	f *memFile
}

type memEngine struct {
	deferred
	fs    *MemFS
	queue []memOp
}

func (e *memEngine) Mode() Mode    { return ModeSyscall }
func (e *memEngine) NotifyFd() int { return -1 }
func (e *memEngine) Inflight() int { return len(e.queue) + len(e.deferFns) }
func (e *memEngine) Wait() error   { return nil }
func (e *memEngine) Close() error  { return Drain(e) }

func (e *memEngine) Write(f File, p []byte, off int64, cb func(int, error)) {
	e.queue = append(e.queue, memOp{ioOp{kind: opWrite, buf: p, off: off, rw: cb}, f.(*memFile)})
}

func (e *memEngine) Read(f File, p []byte, off int64, cb func(int, error)) {
	e.queue = append(e.queue, memOp{ioOp{kind: opRead, buf: p, off: off, rw: cb}, f.(*memFile)})
}

// WriteSync queues the pair as one operation so that Reorder never runs
// the fdatasync before its write, as io_uring's link guarantees.
func (e *memEngine) WriteSync(f File, p []byte, off int64, wcb func(int, error), scb func(error)) {
	e.queue = append(e.queue, memOp{ioOp{kind: opWrite, link: true, buf: p, off: off, rw: wcb, sync: scb}, f.(*memFile)})
}

func (e *memEngine) Sync(f File, cb func(error)) {
	e.queue = append(e.queue, memOp{ioOp{kind: opSync, sync: cb}, f.(*memFile)})
}

// Poll runs the operations queued before it was called. Operations that
// their callbacks submit wait for the next Poll, as they would wait for the
// device; with Reorder, each operation may also stay queued.
func (e *memEngine) Poll() int {
	ran := 0
	e.runDeferred()
	if len(e.queue) > 0 {
		batch := e.queue
		e.queue = nil
		if e.fs.Reorder {
			e.fs.rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
			keep := batch[:0]
			for _, op := range batch {
				if e.fs.rng.Intn(3) == 0 {
					e.queue = append(e.queue, op)
				} else {
					keep = append(keep, op)
				}
			}
			batch = keep
		}
		for i := range batch {
			op := &batch[i]
			switch op.kind {
			case opWrite:
				n, err := op.f.WriteAt(op.buf, op.off)
				op.rw(n, err)
				if op.link {
					if err == nil {
						err = op.f.Sync()
					}
					op.sync(err)
				}
			case opRead:
				n, err := op.f.ReadAt(op.buf, op.off)
				op.rw(n, err)
			case opSync:
				op.sync(op.f.Sync())
			}
			ran++
		}
	}
	return ran
}
