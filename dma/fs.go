package dma

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// File is one open file. Data-path reads and writes go through an Engine;
// the synchronous methods here serve recovery, index files and metadata.
type File interface {
	Name() string
	// Fd is the OS descriptor, or -1 for in-memory files.
	Fd() int
	// Direct reports whether the file was opened with O_DIRECT, in which case
	// every offset, length and buffer address must be a multiple of Align.
	Direct() bool
	Align() int
	Size() (int64, error)
	Truncate(size int64) error
	// Allocate reserves [off, off+n) on disk without changing the size, so
	// later appends do not allocate extents on every write.
	Allocate(off, n int64) error
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Sync() error
	Close() error
}

// FS is the set of synchronous file-system operations Strand uses.
type FS interface {
	// OpenFile opens path. With direct set, the file is opened with O_DIRECT
	// when the file system allows it; File.Direct tells which happened.
	OpenFile(path string, flag int, perm os.FileMode, direct bool) (File, error)
	MkdirAll(dir string) error
	Remove(path string) error
	RemoveAll(path string) error
	Rename(from, to string) error
	// ReadDir lists the names in dir, sorted.
	ReadDir(dir string) ([]string, error)
	// SyncDir makes creations, renames and removals in dir durable.
	SyncDir(dir string) error
	// OpenDir opens a directory so that an Engine can sync it (Sync on it
	// is a full fsync, which persists its entries) without blocking a core.
	OpenDir(dir string) (File, error)
	Exists(path string) bool
	// FreeBytes is the space an unprivileged writer can still take on the
	// file system holding path (statfs f_bavail), so callers can refuse
	// work before the disk is full rather than fail half-way through it.
	FreeBytes(path string) (int64, error)
}

// ErrNoDirect is returned by operations that need O_DIRECT when it is unavailable.
var ErrNoDirect = errors.New("dma: O_DIRECT not supported by this file system")

type osFS struct{}

// OSFS returns the real file system.
func OSFS() FS { return osFS{} }

func (osFS) OpenFile(path string, flag int, perm os.FileMode, direct bool) (File, error) {
	flags := flag | unix.O_CLOEXEC
	if direct {
		fd, err := unix.Open(path, flags|unix.O_DIRECT, uint32(perm))
		if err == nil {
			return &osFile{fd: fd, name: path, direct: true, align: alignOf(fd)}, nil
		}
		if err != unix.EINVAL {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		// The file system refuses O_DIRECT: fall through to buffered I/O.
	}
	fd, err := unix.Open(path, flags, uint32(perm))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &osFile{fd: fd, name: path, direct: false, align: DefaultAlign}, nil
}

func (osFS) MkdirAll(dir string) error    { return os.MkdirAll(dir, 0o755) }
func (osFS) Remove(path string) error     { return os.Remove(path) }
func (osFS) RemoveAll(path string) error  { return os.RemoveAll(path) }
func (osFS) Rename(from, to string) error { return os.Rename(from, to) }
func (osFS) Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (osFS) FreeBytes(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

func (osFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) SyncDir(dir string) error {
	fd, err := unix.Open(filepath.Clean(dir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}

func (osFS) OpenDir(dir string) (File, error) {
	fd, err := unix.Open(filepath.Clean(dir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &osFile{fd: fd, name: dir, align: DefaultAlign, dir: true}, nil
}

type osFile struct {
	fd     int
	name   string
	direct bool
	align  int
	dir    bool
}

func (f *osFile) isDir() bool { return f.dir }

// isDir: engines sync a directory with a full fsync, since fdatasync need
// not persist its entries.
func isDir(f File) bool {
	d, ok := f.(interface{ isDir() bool })
	return ok && d.isDir()
}

func (f *osFile) Name() string { return f.name }
func (f *osFile) Fd() int      { return f.fd }
func (f *osFile) Direct() bool { return f.direct }
func (f *osFile) Align() int   { return f.align }

func (f *osFile) Size() (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return 0, f.wrap("fstat", err)
	}
	return st.Size, nil
}

func (f *osFile) Truncate(size int64) error { return f.wrap("ftruncate", unix.Ftruncate(f.fd, size)) }

func (f *osFile) Allocate(off, n int64) error {
	err := unix.Fallocate(f.fd, unix.FALLOC_FL_KEEP_SIZE, off, n)
	if err == unix.EOPNOTSUPP {
		return nil // preallocation is an optimisation; tmpfs and some others lack it
	}
	return f.wrap("fallocate", err)
}

func (f *osFile) ReadAt(p []byte, off int64) (int, error) {
	total := 0
	for total < len(p) {
		n, err := unix.Pread(f.fd, p[total:], off+int64(total))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, f.wrap("pread", err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	return total, nil
}

func (f *osFile) WriteAt(p []byte, off int64) (int, error) {
	total := 0
	for total < len(p) {
		n, err := unix.Pwrite(f.fd, p[total:], off+int64(total))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, f.wrap("pwrite", err)
		}
		total += n
	}
	return total, nil
}

func (f *osFile) Sync() error {
	if f.dir {
		return f.wrap("fsync", unix.Fsync(f.fd))
	}
	return f.wrap("fdatasync", unix.Fdatasync(f.fd))
}

func (f *osFile) Close() error {
	if f.fd < 0 {
		return nil
	}
	err := unix.Close(f.fd)
	f.fd = -1
	return f.wrap("close", err)
}

func (f *osFile) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s: %w", op, f.name, err)
}
