// Package perftest holds checks shared by perf's own tests and its
// end-to-end tests in perf/e2e, so both hold a chart to the same rule.
package perftest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// CheckSVG parses chart.svg as XML and fails t unless its root is <svg>,
// it has at least minLines polylines (two axes, plus curves) and no
// polyline has a NaN or infinite coordinate.
func CheckSVG(t testing.TB, svg []byte, minLines int) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var root string
	lines := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chart.svg is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			if se.Name.Local == "polyline" {
				lines++
				for _, a := range se.Attr {
					if a.Name.Local == "points" && (strings.Contains(a.Value, "NaN") || strings.Contains(a.Value, "Inf")) {
						t.Fatalf("polyline with bad coordinates: %.80s", a.Value)
					}
				}
			}
		}
	}
	if root != "svg" || lines < minLines {
		t.Fatalf("root <%s>, %d polylines; want <svg> with axes and curves", root, lines)
	}
}
