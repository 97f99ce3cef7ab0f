package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// failure is one failed test and the first lines of its messages.
type failure struct {
	pkg, test string
	lines     []string
}

// skip is one skipped test and the reason it printed.
type skip struct {
	pkg, test, reason string
}

// pkgState is the output of one package's tests held until the package
// ends: a passing package shows only its closing line.
type pkgState struct {
	own   []string            // the package's output outside any test
	tests map[string][]string // a running test's output
	order []string            // tests in the order they started
}

// report turns the event stream into go test's plain output and collects
// the skips.
type report struct {
	out    *bufio.Writer
	module string
	pkgs   map[string]*pkgState
	skips  []skip
	failed bool
	// failures holds, per failed test, the first line of each message it
	// logged (t.Error, t.Fatal, t.Log): printed again last, because a
	// failed test's log dumps can push its verdict out of a log's tail.
	failures []failure
	// show names packages (relative to the module) whose passing
	// top-level tests are listed, as go test -v would close them.
	show map[string]bool
}

func newReport(out *bufio.Writer, module string) *report {
	return &report{out: out, module: module, pkgs: map[string]*pkgState{}}
}

// read consumes the stream until EOF. A line that is not an event is
// printed as it is.
func (r *report) read(in *bufio.Reader) error {
	for {
		line, err := in.ReadString('\n')
		if line != "" {
			var e event
			if jerr := json.Unmarshal([]byte(line), &e); jerr != nil || e.Action == "" {
				fmt.Fprint(r.out, line)
			} else {
				r.event(e)
			}
		}
		if errors.Is(err, io.EOF) {
			r.unfinished()
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (r *report) pkg(name string) *pkgState {
	p := r.pkgs[name]
	if p == nil {
		p = &pkgState{tests: map[string][]string{}}
		r.pkgs[name] = p
	}
	return p
}

func (r *report) event(e event) {
	if e.Package == "" {
		// build-output and build-fail: go test prints build errors on
		// stderr too, which skipcheck passes through, so they are not
		// printed twice.
		return
	}
	p := r.pkg(e.Package)
	if e.Test == "" {
		r.packageEvent(p, e)
		return
	}
	switch e.Action {
	case "output":
		if _, ok := p.tests[e.Test]; !ok {
			p.order = append(p.order, e.Test)
		}
		p.tests[e.Test] = append(p.tests[e.Test], e.Output)
	case "fail":
		r.print(p.tests[e.Test])
		r.failures = append(r.failures, failure{pkg: e.Package, test: e.Test, lines: messages(p.tests[e.Test])})
		delete(p.tests, e.Test)
	case "skip":
		r.skips = append(r.skips, skip{pkg: e.Package, test: e.Test, reason: skipReason(p.tests[e.Test])})
		delete(p.tests, e.Test)
	case "pass":
		if r.show[r.short(e.Package)] && !strings.Contains(e.Test, "/") {
			for _, l := range p.tests[e.Test] {
				if strings.HasPrefix(l, "--- PASS: ") {
					fmt.Fprint(r.out, l)
				}
			}
		}
		delete(p.tests, e.Test)
	}
}

func (r *report) packageEvent(p *pkgState, e event) {
	switch e.Action {
	case "output":
		p.own = append(p.own, e.Output)
	case "pass", "skip":
		// Only go test's closing line: "ok ...", "? ... [no test files]".
		if n := len(p.own); n > 0 {
			r.print(p.own[n-1:])
		}
		delete(r.pkgs, e.Package)
	case "fail":
		// A test that never finished (a panic, a timeout) took the
		// binary down: its output is the story.
		for _, t := range p.order {
			r.print(p.tests[t])
			if lines, ok := p.tests[t]; ok {
				r.failures = append(r.failures, failure{pkg: e.Package, test: t + " (did not finish)", lines: messages(lines)})
			}
		}
		r.print(p.own)
		r.failed = true
		delete(r.pkgs, e.Package)
	}
	r.out.Flush()
}

// unfinished prints what packages that never ended printed (go test was
// killed, or died), so the stream's last words are not lost.
func (r *report) unfinished() {
	names := make([]string, 0, len(r.pkgs))
	for name := range r.pkgs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := r.pkgs[name]
		for _, t := range p.order {
			r.print(p.tests[t])
			if lines, ok := p.tests[t]; ok {
				r.failures = append(r.failures, failure{pkg: name, test: t + " (did not finish)", lines: messages(lines)})
			}
		}
		r.print(p.own)
		r.failed = true
	}
	clear(r.pkgs)
}

// print writes output lines as go test without -v shows them: without
// the "=== RUN" style framing that only -v adds.
func (r *report) print(lines []string) {
	for _, l := range lines {
		if isFraming(l) {
			continue
		}
		fmt.Fprint(r.out, l)
	}
}

func isFraming(l string) bool {
	for _, p := range []string{"=== RUN ", "=== PAUSE ", "=== CONT ", "=== NAME "} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// messageLine matches the first line of a message testing prints for
// t.Log, t.Error and t.Fatal: four spaces, file:line, colon.
// A panic's first line is kept too.
var messageLine = regexp.MustCompile(`^(    [^ ]+\.go:\d+: |panic: )`)

// messages keeps the first line of each message in a test's output, each
// cut at 300 bytes, at most 20 of them.
func messages(lines []string) []string {
	var out []string
	for _, l := range lines {
		if !messageLine.MatchString(l) {
			continue
		}
		l = strings.TrimRight(l, "\n")
		if len(l) > 300 {
			l = l[:300] + "..."
		}
		if len(out) == 20 {
			out = append(out, "    ...")
			break
		}
		out = append(out, l)
	}
	return out
}

// failureList prints each failed test with its messages' first lines.
func (r *report) failureList() {
	if len(r.failures) == 0 {
		return
	}
	fmt.Fprintf(r.out, "\nfailed tests: %d\n", len(r.failures))
	for _, f := range r.failures {
		fmt.Fprintf(r.out, "  %s %s\n", r.short(f.pkg), f.test)
		for _, l := range f.lines {
			fmt.Fprintf(r.out, "  %s\n", l)
		}
	}
}

// skipReason is what a skipped test printed, on one line.
func skipReason(lines []string) string {
	var parts []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || isFraming(l+" ") || strings.HasPrefix(l, "--- SKIP: ") {
			continue
		}
		parts = append(parts, l)
	}
	return strings.Join(parts, " / ")
}

// skipList prints the skipped tests, marking those the allow-list does
// not name, and reports whether every skip was allowed.
func (r *report) skipList(allow []allowEntry, allowFile string) bool {
	var bad int
	for _, s := range r.skips {
		if !allowed(allow, r.short(s.pkg), s.test, s.reason) {
			bad++
		}
	}
	fmt.Fprintln(r.out)
	switch {
	case len(r.skips) == 0:
		fmt.Fprintln(r.out, "skipped tests: none")
		return true
	case bad == 0:
		fmt.Fprintf(r.out, "skipped tests: %d, each named in %s:\n", len(r.skips), allowFile)
	default:
		fmt.Fprintf(r.out, "skipped tests: %d, of which %d NOT in %s (the run fails: these must run on CI):\n", len(r.skips), bad, allowFile)
	}
	for _, s := range r.skips {
		mark := "  allowed "
		if !allowed(allow, r.short(s.pkg), s.test, s.reason) {
			mark = "  NOT OK  "
		}
		fmt.Fprintf(r.out, "%s%s %s: %s\n", mark, r.short(s.pkg), s.test, s.reason)
	}
	return bad == 0
}

// short drops the module path from a package's import path.
func (r *report) short(pkg string) string {
	if r.module == "" {
		return pkg
	}
	if pkg == r.module {
		return "."
	}
	return strings.TrimPrefix(pkg, r.module+"/")
}
