package dma

import (
	"errors"
	"reflect"
	"syscall"
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

type opKind uint8

const (
	opWrite opKind = iota + 1
	opRead
	opSync
)

// ioOp is one queued or in-flight operation. buf is held here so the memory
// the kernel is using stays referenced until the completion is reaped.
type ioOp struct {
	kind opKind
	// link: the next op (queued right after this one) starts only once
	// this one has succeeded.
	link bool
	// skipCQE: a write linked to its fdatasync posts no completion when it
	// succeeds (IOSQE_CQE_SKIP_SUCCESS); the fdatasync's completion
	// completes it. partner is the other op's slot+1 (0: none, or the
	// write already completed on its own because it failed).
	skipCQE bool
	partner uint32
	// gen tells this use of the slot from earlier ones in the SQE's user
	// data, so a completion for an op already completed here is ignored.
	gen uint32
	// full: fsync rather than fdatasync (a directory's entries).
	full bool
	fd   int
	buf  []byte
	off  int64
	rw   func(n int, err error)
	sync func(err error)
}

func (op *ioOp) complete(res int32) {
	switch op.kind {
	case opSync:
		op.sync(resErr(res))
	case opWrite:
		n, err := resN(res)
		if err == nil && n < len(op.buf) {
			err = ErrShortWrite
		}
		op.rw(n, err)
	case opRead:
		n, err := resN(res)
		op.rw(n, err)
	}
}

func resN(res int32) (int, error) {
	if res < 0 {
		return 0, syscall.Errno(-res)
	}
	return int(res), nil
}

func resErr(res int32) error {
	if res < 0 {
		return syscall.Errno(-res)
	}
	return nil
}

// uringEngine drives one io_uring ring. Ops live in a slot table indexed by
// the SQE user data, so the hot path allocates nothing of its own.
type uringEngine struct {
	deferred
	ring     *giouring.Ring
	efd      int
	slots    []ioOp
	free     []uint32
	backlog  []uint32 // ops waiting for a free SQE
	inflight int
	cqes     []*giouring.CompletionQueueEvent
	reaped   []reaped
	// cqeSkip: the kernel honours IOSQE_CQE_SKIP_SUCCESS (5.17+), so a
	// linked write+fdatasync wakes the core once, not twice.
	cqeSkip bool
	gen     uint32
	// submitHook, when set (tests), replaces io_uring_enter's submit.
	submitHook func() (uint, error)
}

// pollBudget bounds the completions one Poll runs before it yields.
const pollBudget = 512

type reaped struct {
	slot, gen uint32
	res       int32
}

func newURingEngine(entries uint32) (*uringEngine, error) {
	if entries == 0 {
		entries = 256
	}
	ring, err := giouring.CreateRing(entries)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		ring.QueueExit()
		return nil, err
	}
	if _, err := ring.RegisterEventFd(efd); err != nil {
		unix.Close(efd)
		ring.QueueExit()
		return nil, err
	}
	return &uringEngine{ring: ring, efd: efd, cqes: make([]*giouring.CompletionQueueEvent, 2*entries), cqeSkip: ringFeatures(ring)&giouring.FeatCQESkip != 0}, nil
}

// ringFeatures reads the IORING_FEAT_* bits the kernel reported at setup.
// giouring keeps them unexported; reflect can read (not write) such a
// field, and a giouring without it reads as no features.
func ringFeatures(ring *giouring.Ring) uint32 {
	f := reflect.ValueOf(ring).Elem().FieldByName("features")
	if !f.IsValid() || f.Kind() != reflect.Uint32 {
		return 0
	}
	return uint32(f.Uint())
}

func (e *uringEngine) Mode() Mode    { return ModeURing }
func (e *uringEngine) NotifyFd() int { return e.efd }
func (e *uringEngine) Inflight() int { return e.inflight + len(e.deferFns) }

func (e *uringEngine) Write(f File, p []byte, off int64, cb func(int, error)) {
	e.enqueue(ioOp{kind: opWrite, fd: f.Fd(), buf: p, off: off, rw: cb})
}

func (e *uringEngine) Read(f File, p []byte, off int64, cb func(int, error)) {
	e.enqueue(ioOp{kind: opRead, fd: f.Fd(), buf: p, off: off, rw: cb})
}

func (e *uringEngine) Sync(f File, cb func(error)) {
	e.enqueue(ioOp{kind: opSync, full: isDir(f), fd: f.Fd(), sync: cb})
}

func (e *uringEngine) WriteSync(f File, p []byte, off int64, wcb func(int, error), scb func(error)) {
	if !e.cqeSkip || len(p) == 0 {
		e.enqueue(ioOp{kind: opWrite, link: true, fd: f.Fd(), buf: p, off: off, rw: wcb})
		e.enqueue(ioOp{kind: opSync, fd: f.Fd(), sync: scb})
		return
	}
	w := e.enqueue(ioOp{kind: opWrite, link: true, skipCQE: true, fd: f.Fd(), buf: p, off: off, rw: wcb})
	s := e.enqueue(ioOp{kind: opSync, fd: f.Fd(), sync: scb, partner: w + 1})
	e.slots[w].partner = s + 1
}

func (e *uringEngine) enqueue(op ioOp) uint32 {
	var slot uint32
	if n := len(e.free); n > 0 {
		slot = e.free[n-1]
		e.free = e.free[:n-1]
		e.slots[slot] = op
	} else {
		slot = uint32(len(e.slots))
		e.slots = append(e.slots, op)
	}
	e.gen++
	e.slots[slot].gen = e.gen
	e.inflight++
	if len(e.backlog) > 0 || !e.prepare(slot) {
		e.backlog = append(e.backlog, slot)
	}
	return slot
}

// prepare fills one SQE. The entry is zeroed first: giouring's Prepare*
// leave OpcodeFlags from a slot's previous use (an fsync's DATASYNC flag
// reads as RWF_HIPRI on a later write and fails it with EINVAL).
func (e *uringEngine) prepare(slot uint32) bool {
	op := &e.slots[slot]
	if op.link && e.ring.SQSpaceLeft() < 2 {
		return false // a linked pair goes into one submission, whole
	}
	sqe := e.ring.GetSQE()
	if sqe == nil {
		return false
	}
	*sqe = giouring.SubmissionQueueEntry{}
	switch op.kind {
	case opWrite, opRead:
		var addr uintptr
		if len(op.buf) > 0 {
			addr = uintptr(unsafe.Pointer(&op.buf[0]))
		}
		if op.kind == opWrite {
			sqe.PrepareWrite(op.fd, addr, uint32(len(op.buf)), uint64(op.off))
		} else {
			sqe.PrepareRead(op.fd, addr, uint32(len(op.buf)), uint64(op.off))
		}
	case opSync:
		flags := giouring.FsyncDatasync
		if op.full {
			flags = 0
		}
		sqe.PrepareFsync(op.fd, flags)
	}
	sqe.SetData64(uint64(slot) | uint64(op.gen)<<32)
	if op.link {
		sqe.Flags |= giouring.SqeIOLink // after Prepare*, which resets Flags
	}
	if op.skipCQE {
		sqe.Flags |= giouring.SqeCQESkipSuccess
	}
	return true
}

func (e *uringEngine) fillBacklog() {
	i := 0
	for ; i < len(e.backlog); i++ {
		if !e.prepare(e.backlog[i]) {
			break
		}
	}
	e.backlog = e.backlog[:copy(e.backlog, e.backlog[i:])]
}

func (e *uringEngine) submit() {
	if e.ring.SQReady() == 0 {
		return
	}
	for {
		_, err := e.submitRing()
		switch {
		case err == nil:
			return
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EBUSY):
			// The kernel is short of memory, or the completion ring is
			// full. The entries stay queued; ring our own doorbell so the
			// reaper brings the core back to retry even if nothing in
			// flight would have woken it.
			var one = [8]byte{1}
			_, _ = unix.Write(e.efd, one[:])
			return
		default:
			return
		}
	}
}

// submitRing is io_uring_enter; tests replace it to inject EAGAIN.
func (e *uringEngine) submitRing() (uint, error) {
	if e.submitHook != nil {
		return e.submitHook()
	}
	return e.ring.Submit()
}

func (e *uringEngine) Poll() int {
	ran := 0
	for {
		e.runDeferred()
		e.fillBacklog()
		e.submit()
		n := e.ring.PeekBatchCQE(e.cqes)
		if n == 0 {
			if len(e.deferFns) > 0 {
				continue
			}
			return ran
		}
		if ran >= pollBudget {
			// Completions that queue more I/O (a read chain, a busy log)
			// could keep the core here indefinitely while its network and
			// messages wait. Give the loop back and ring our own doorbell
			// so the reaper brings the core back for the rest.
			var one = [8]byte{1}
			_, _ = unix.Write(e.efd, one[:])
			return ran
		}
		e.reaped = e.reaped[:0]
		for _, c := range e.cqes[:n] {
			e.reaped = append(e.reaped, reaped{slot: uint32(c.UserData), gen: uint32(c.UserData >> 32), res: c.Res})
		}
		e.ring.CQAdvance(n)
		for _, r := range e.reaped {
			op := e.slots[r.slot]
			if op.kind == 0 || op.gen != r.gen {
				continue // completed here already (see below)
			}
			e.release(r.slot)
			switch {
			case op.skipCQE && op.partner != 0:
				// The write failed or was short: the kernel posts that
				// despite the skip flag, and then skips the cancelled
				// fdatasync's completion, so it is completed here.
				sy := e.slots[op.partner-1]
				e.release(op.partner - 1)
				op.complete(r.res)
				sy.complete(-int32(syscall.ECANCELED))
				ran += 2
				continue
			case op.kind == opSync && op.partner != 0:
				// The write posted nothing, so it succeeded in full.
				w := e.slots[op.partner-1]
				e.release(op.partner - 1)
				w.complete(int32(len(w.buf)))
				ran++
			}
			op.complete(r.res)
			ran++
		}
	}
}

func (e *uringEngine) release(slot uint32) {
	e.slots[slot] = ioOp{}
	e.free = append(e.free, slot)
	e.inflight--
}

func (e *uringEngine) Wait() error {
	if e.inflight == 0 || len(e.deferFns) > 0 {
		return nil
	}
	e.fillBacklog()
	for {
		var err error
		if e.ring.SQReady() > 0 {
			_, err = e.ring.SubmitAndWait(1)
		} else {
			_, err = e.ring.WaitCQE()
		}
		if err == nil || !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

func (e *uringEngine) Close() error {
	err := Drain(e)
	e.ring.QueueExit()
	unix.Close(e.efd)
	return err
}
