package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A go test -json stream with a passing package that skips twice, a
// failing one (a failed test, a passing one and a panicking one that never
// finishes) and a package without tests.
const stream = `{"Action":"start","Package":"m/a"}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"    a_test.go:3: chatter of a passing test\n"}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"--- PASS: TestOK (0.00s)\n"}
{"Action":"pass","Package":"m/a","Test":"TestOK"}
{"Action":"output","Package":"m/a","Test":"TestChild","Output":"=== RUN   TestChild\n"}
{"Action":"output","Package":"m/a","Test":"TestChild","Output":"    a_test.go:4: writer half of TestCrash\n"}
{"Action":"output","Package":"m/a","Test":"TestChild","Output":"--- SKIP: TestChild (0.00s)\n"}
{"Action":"skip","Package":"m/a","Test":"TestChild"}
{"Action":"output","Package":"m/a","Test":"TestSub/x","Output":"=== RUN   TestSub/x\n"}
{"Action":"output","Package":"m/a","Test":"TestSub/x","Output":"    a_test.go:5: no kcat here\n"}
{"Action":"output","Package":"m/a","Test":"TestSub/x","Output":"--- SKIP: TestSub/x (0.00s)\n"}
{"Action":"skip","Package":"m/a","Test":"TestSub/x"}
{"Action":"output","Package":"m/a","Test":"TestSub","Output":"--- PASS: TestSub (0.00s)\n"}
{"Action":"pass","Package":"m/a","Test":"TestSub"}
{"Action":"output","Package":"m/a","Output":"PASS\n"}
{"Action":"output","Package":"m/a","Output":"ok  \tm/a\t0.126s\n"}
{"Action":"pass","Package":"m/a"}
{"ImportPath":"m/c [m/c.test]","Action":"build-output","Output":"# m/c [m/c.test]\n"}
{"Action":"start","Package":"m/b"}
{"Action":"output","Package":"m/b","Test":"TestFail","Output":"=== RUN   TestFail\n"}
{"Action":"output","Package":"m/b","Test":"TestFail","Output":"    b_test.go:3: bad\n"}
{"Action":"output","Package":"m/b","Test":"TestFail","Output":"--- FAIL: TestFail (0.00s)\n"}
{"Action":"fail","Package":"m/b","Test":"TestFail"}
{"Action":"output","Package":"m/b","Test":"TestQuiet","Output":"=== RUN   TestQuiet\n"}
{"Action":"output","Package":"m/b","Test":"TestQuiet","Output":"    b_test.go:5: chatter of another passing test\n"}
{"Action":"pass","Package":"m/b","Test":"TestQuiet"}
{"Action":"output","Package":"m/b","Test":"TestPanic","Output":"=== RUN   TestPanic\n"}
{"Action":"output","Package":"m/b","Test":"TestPanic","Output":"panic: boom\n"}
{"Action":"output","Package":"m/b","Output":"FAIL\tm/b\t0.079s\n"}
{"Action":"fail","Package":"m/b"}
{"Action":"output","Package":"m/d","Output":"?   \tm/d\t[no test files]\n"}
{"Action":"skip","Package":"m/d"}
`

func TestReportPrintsWhatPlainGoTestPrints(t *testing.T) {
	var buf bytes.Buffer
	out := bufio.NewWriter(&buf)
	r := newReport(out, "m")
	r.show = map[string]bool{"a": true}
	if err := r.read(bufio.NewReader(strings.NewReader(stream))); err != nil {
		t.Fatal(err)
	}
	out.Flush()
	want := "--- PASS: TestOK (0.00s)\n--- PASS: TestSub (0.00s)\n" + // m/a is shown; m/b, which also has a passing test, is not
		"ok  \tm/a\t0.126s\n" +
		"    b_test.go:3: bad\n--- FAIL: TestFail (0.00s)\n" +
		"panic: boom\nFAIL\tm/b\t0.079s\n" +
		"?   \tm/d\t[no test files]\n"
	if got := buf.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	if !r.failed {
		t.Error("a failed package did not mark the run failed")
	}
	wantFailures := "[{m/b TestFail [    b_test.go:3: bad]} {m/b TestPanic (did not finish) [panic: boom]}]"
	if got := fmt.Sprint(r.failures); got != wantFailures {
		t.Errorf("failures %s, want %s", got, wantFailures)
	}
	wantSkips := []skip{{"m/a", "TestChild", "a_test.go:4: writer half of TestCrash"}, {"m/a", "TestSub/x", "a_test.go:5: no kcat here"}}
	if fmt.Sprint(r.skips) != fmt.Sprint(wantSkips) {
		t.Errorf("skips %v, want %v", r.skips, wantSkips)
	}
}

func TestAllowed(t *testing.T) {
	allow := []allowEntry{
		{pkg: "a", test: "TestChild", reason: "writer half", why: "w"},
		{pkg: "a", test: "FuzzX", reason: "", why: "w"},
	}
	cases := []struct {
		pkg, test, reason string
		want              bool
	}{
		{"a", "TestChild", "x.go:1: writer half of Y", true},
		{"a", "TestChild", "x.go:1: needs root", false}, // allowed test, other reason
		{"b", "TestChild", "writer half", false},        // other package
		{"a", "TestChildren", "writer half", false},     // a name that only starts the same
		{"a", "TestChild/sub", "writer half", true},     // subtests are covered
		{"a", "FuzzX/seed#3", "", true},
		{"a", "TestOther", "", false},
	}
	for _, c := range cases {
		if got := allowed(allow, c.pkg, c.test, c.reason); got != c.want {
			t.Errorf("allowed(%s %s %q) = %v, want %v", c.pkg, c.test, c.reason, got, c.want)
		}
	}
}

func TestReadAllowList(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("# comment\n\nshard | TestA | because | why not\ndma | FuzzB |  | inputs\n"), 0o644)
	got, err := readAllowList(good)
	if err != nil || len(got) != 2 || got[0] != (allowEntry{"shard", "TestA", "because", "why not"}) || got[1].reason != "" {
		t.Errorf("readAllowList = %+v, %v", got, err)
	}
	for _, bad := range []string{"shard | TestA | because\n", "shard | TestA | because | \n", " | TestA | r | why\n"} {
		f := filepath.Join(dir, "bad")
		os.WriteFile(f, []byte(bad), 0o644)
		if _, err := readAllowList(f); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// The checked-in list parses, and covers what it is meant to.
	list, err := readAllowList("../../.ci/allowed-skips")
	if err != nil {
		t.Fatal(err)
	}
	if !allowed(list, "shard", "TestCrashChild", "crash_test.go:81: writer half of TestCrashSIGKILL; runs only as its child process") {
		t.Error("the checked-in list does not allow the crash test's writer half")
	}
	if allowed(list, "wire", "TestKcatProduceConsume", "kcat not installed") {
		t.Error("the checked-in list allows a skip for want of kcat")
	}
}

// The exit code: go test's when it failed, else 1 for a skip not allowed.
// The go test here is this test binary, playing back a stream.
func TestRunExitCode(t *testing.T) {
	allow := []allowEntry{{pkg: "a", test: "TestChild", reason: "writer half", why: "w"}}
	cases := []struct {
		name     string
		stream   string
		exit     int
		want     int
		wantLast string
	}{
		{"pass", okStream, 0, 0, "skipped tests: none"},
		{"allowed skip", skipStream("TestChild", "writer half of it") + okStream, 0, 0, "  allowed a TestChild: x_test.go:1: writer half of it"},
		{"skip not allowed", skipStream("TestKcat", "no kcat") + okStream, 0, 1, "  NOT OK  a TestKcat: x_test.go:1: no kcat"},
		{"go test failed", okStream, 3, 3, "skipped tests: none"},
		{"go test failed, skip not allowed", skipStream("TestKcat", "no kcat") + okStream, 3, 3, "  NOT OK  a TestKcat: x_test.go:1: no kcat"},
		// A failed test's verdict is printed again last, below its log
		// dumps and the skip list, where a log's tail still shows it.
		{"test failed", okStream + failStream("TestBad", "lost 3 records"), 1, 1, "      x_test.go:9: lost 3 records"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(playbackEnv, c.stream)
			t.Setenv(playbackExitEnv, fmt.Sprint(c.exit))
			var buf bytes.Buffer
			code := run([]string{os.Args[0]}, allow, "allow", "m", nil, &buf)
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if code != c.want || lines[len(lines)-1] != c.wantLast {
				t.Errorf("exit %d, output:\n%s\nwant exit %d, last line %q", code, buf.String(), c.want, c.wantLast)
			}
			if !strings.HasPrefix(buf.String(), "ok  \tm/a\t0.1s\n") {
				t.Errorf("output does not start with go test's line for m/a:\n%s", buf.String())
			}
			if failed := strings.Contains(buf.String(), "\nFAIL\n"); failed != (c.exit != 0) {
				t.Errorf("go test's closing FAIL printed: %v, want %v", failed, c.exit != 0)
			}
		})
	}
}

const (
	playbackEnv     = "SKIPCHECK_PLAYBACK"
	playbackExitEnv = "SKIPCHECK_PLAYBACK_EXIT"
	okStream        = `{"Action":"output","Package":"m/a","Output":"ok  \tm/a\t0.1s\n"}` + "\n" +
		`{"Action":"pass","Package":"m/a"}` + "\n"
)

func failStream(test, msg string) string {
	return fmt.Sprintf(`{"Action":"output","Package":"m/b","Test":%q,"Output":"    x_test.go:9: %s\n"}`+"\n"+
		`{"Action":"output","Package":"m/b","Test":%q,"Output":"        a dump line\n"}`+"\n"+
		`{"Action":"fail","Package":"m/b","Test":%q}`+"\n", test, msg, test, test)
}

func skipStream(test, reason string) string {
	return fmt.Sprintf(`{"Action":"output","Package":"m/a","Test":%q,"Output":"    x_test.go:1: %s\n"}`+"\n"+
		`{"Action":"skip","Package":"m/a","Test":%q}`+"\n", test, reason, test)
}

// TestMain plays a stream back instead of running tests when
// TestRunExitCode runs this binary as its go test.
func TestMain(m *testing.M) {
	if s, ok := os.LookupEnv(playbackEnv); ok {
		fmt.Print(s)
		var code int
		fmt.Sscan(os.Getenv(playbackExitEnv), &code)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// A package that never ends (go test killed mid-run) still shows what it
// printed, and the run counts as failed.
func TestReportUnfinishedPackage(t *testing.T) {
	var buf bytes.Buffer
	out := bufio.NewWriter(&buf)
	r := newReport(out, "m")
	in := `{"Action":"output","Package":"m/a","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"m/a","Test":"TestHang","Output":"    a_test.go:9: waiting\n"}
`
	if err := r.read(bufio.NewReader(strings.NewReader(in))); err != nil {
		t.Fatal(err)
	}
	out.Flush()
	if buf.String() != "    a_test.go:9: waiting\n" || !r.failed {
		t.Errorf("output %q, failed %v", buf.String(), r.failed)
	}
}
