package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress timing: small inputs finish before the delay and never draw.
const (
	progressDelay    = 500 * time.Millisecond
	progressInterval = 200 * time.Millisecond
	progressBarWidth = 24
)

// progress draws produce's progress line on a terminal: input read (and a
// bar when the size is known), records acknowledged, and the rates.
type progress struct {
	w     io.Writer
	size  int64 // input bytes, or -1 when unknown (stdin)
	acked *atomic.Int64
	read  atomic.Int64
	start time.Time
	done  chan struct{}
	exit  chan struct{}
	once  sync.Once
}

func startProgress(w io.Writer, size int64, acked *atomic.Int64) *progress {
	p := &progress{w: w, size: size, acked: acked, start: time.Now(), done: make(chan struct{}), exit: make(chan struct{})}
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer close(p.exit)
	drew := false
	t := time.NewTicker(progressInterval)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			if drew {
				fmt.Fprint(p.w, "\r\033[K") // leave the line to the summary
			}
			return
		case <-t.C:
			if time.Since(p.start) < progressDelay {
				continue
			}
			fmt.Fprint(p.w, "\r\033[K"+p.line(time.Since(p.start)))
			drew = true
		}
	}
}

// line renders one progress line after elapsed.
func (p *progress) line(elapsed time.Duration) string {
	read, acked := p.read.Load(), p.acked.Load()
	secs := elapsed.Seconds()
	var b strings.Builder
	if p.size > 0 {
		frac := float64(read) / float64(p.size)
		if frac > 1 {
			frac = 1
		}
		n := int(frac * progressBarWidth)
		fmt.Fprintf(&b, "[%s%s] %3.0f%% ", strings.Repeat("=", n), strings.Repeat(" ", progressBarWidth-n), frac*100)
		fmt.Fprintf(&b, "%s/%s", byteSize(read), byteSize(p.size))
	} else {
		fmt.Fprintf(&b, "%s read", byteSize(read))
	}
	fmt.Fprintf(&b, "  %d acked  %s", acked, rate(acked, read, secs))
	return b.String()
}

// stop erases the line and waits for the drawing goroutine; it may be
// called more than once.
func (p *progress) stop() {
	p.once.Do(func() { close(p.done) })
	<-p.exit
}
