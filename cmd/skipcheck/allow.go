package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// allowEntry is one line of the allow-list:
//
//	package | test | reason | why
//
// package is relative to the module (shard, cluster/e2e); test names a
// test and covers its subtests; reason is a substring of what the test
// prints when it skips (empty: any); why is for the reader.
type allowEntry struct {
	pkg, test, reason, why string
}

func readAllowList(file string) ([]allowEntry, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []allowEntry
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) != 4 {
			return nil, fmt.Errorf("%s:%d: want package | test | reason | why, got %d fields", file, n, len(f))
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		if f[0] == "" || f[1] == "" || f[3] == "" {
			return nil, fmt.Errorf("%s:%d: package, test and why must not be empty", file, n)
		}
		out = append(out, allowEntry{pkg: f[0], test: f[1], reason: f[2], why: f[3]})
	}
	return out, sc.Err()
}

// allowed reports whether an entry covers a skip of test in pkg that
// printed reason.
func allowed(allow []allowEntry, pkg, test, reason string) bool {
	for _, a := range allow {
		if a.pkg == pkg && (test == a.test || strings.HasPrefix(test, a.test+"/")) && strings.Contains(reason, a.reason) {
			return true
		}
	}
	return false
}
