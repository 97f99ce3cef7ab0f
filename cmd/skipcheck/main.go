// Command skipcheck runs `go test -json` for `make test`, prints what a
// plain `go test` would print, then lists every skipped test with its
// reason, and fails the run when a test skipped that the allow-list does
// not name.
//
//	skipcheck [-allow .ci/allowed-skips] [-show pkg,...] -- go test -json [flags] [packages]
//
// A test that skips where CI runs protects nothing: a missing broker,
// kcat, root or io_uring on CI's machine must turn the run red, not pass
// quietly. Tests that skip on purpose (the child halves of multi-process
// tests, seed-corpus rewriters) are named in the allow-list with why.
//
// Output: for each package, go test's own closing line ("ok  \tpkg\t3.2s",
// "?   \tpkg\t[no test files]", "FAIL\tpkg\t...") and, for a failed
// package, the output of its failed and unfinished tests and of the
// package itself, as go test prints them without -v; then go test's last
// "FAIL" if it failed; then the skip list. -show also lists the passing
// top-level tests of the packages it names ("--- PASS: TestX (1.20s)"),
// for tests whose running is the point (perf/e2e's used to skip). The exit code is go test's when
// it failed, else 1 if a skip is not allowed, else 0.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

func main() {
	allowFile := flag.String("allow", ".ci/allowed-skips", "the allow-list of expected skips")
	module := flag.String("module", "", "import path prefix trimmed from package names (default: from go.mod)")
	show := flag.String("show", "", "comma-separated packages (relative to the module) whose passing top-level tests are listed")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: skipcheck [-allow FILE] [-show PKG,...] -- go test -json [flags] [packages]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	allow, err := readAllowList(*allowFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "skipcheck:", err)
		os.Exit(2)
	}
	if *module == "" {
		*module = modulePath("go.mod")
	}
	shown := map[string]bool{}
	for _, p := range strings.Split(*show, ",") {
		if p = strings.TrimSpace(p); p != "" {
			shown[p] = true
		}
	}
	os.Exit(run(flag.Args(), allow, *allowFile, *module, shown, os.Stdout))
}

// run executes the go test command line args and returns the exit code.
func run(args []string, allow []allowEntry, allowFile, module string, show map[string]bool, stdout io.Writer) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr // build errors and go's own complaints, as they come
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "skipcheck:", err)
		return 2
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "skipcheck:", err)
		return 2
	}
	out := bufio.NewWriter(stdout)
	r := newReport(out, module)
	r.show = show
	readErr := r.read(bufio.NewReader(pipe))
	waitErr := cmd.Wait()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(waitErr, &exit):
		code = max(exit.ExitCode(), 1)
	case waitErr != nil || readErr != nil:
		fmt.Fprintln(os.Stderr, "skipcheck:", errors.Join(waitErr, readErr))
		code = 2
	}
	if code != 0 || r.failed {
		// go test's last line when anything failed; -json leaves it out.
		fmt.Fprintln(out, "FAIL")
		code = max(code, 1)
	}
	if !r.skipList(allow, allowFile) && code == 0 {
		code = 1
	}
	r.failureList()
	out.Flush()
	return code
}

// modulePath reads the module line of go.mod ("" if there is none).
func modulePath(file string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m string
		if _, err := fmt.Sscanf(sc.Text(), "module %s", &m); err == nil {
			return m
		}
	}
	return ""
}
