package reactor

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestPlacementAssignSpreadsEvenly(t *testing.T) {
	p := NewPlacement(3)
	got := p.Assign("a", 4)
	if want := []CoreID{0, 1, 2, 0}; !slices.Equal(got, want) {
		t.Fatalf("a: %v, want %v", got, want)
	}
	// Loads are now 2,1,1: new partitions fill the least-loaded cores first,
	// lowest id on ties.
	got = p.Assign("b", 3)
	if want := []CoreID{1, 2, 0}; !slices.Equal(got, want) {
		t.Fatalf("b: %v, want %v", got, want)
	}
	for c := CoreID(0); c < 3; c++ {
		if p.LoadOf(c) < 2 || p.LoadOf(c) > 3 {
			t.Fatalf("core %d load %d: not even", c, p.LoadOf(c))
		}
	}
	// Assign is idempotent for placed partitions and extends a topic.
	again := p.Assign("a", 6)
	if !slices.Equal(again[:4], []CoreID{0, 1, 2, 0}) {
		t.Fatalf("re-assign moved partitions: %v", again)
	}
	if p.Len() != 9 {
		t.Fatalf("Len = %d, want 9", p.Len())
	}
}

func TestPlacementDeterministic(t *testing.T) {
	build := func() *Placement {
		p := NewPlacement(4)
		p.Assign("x", 7)
		p.Assign("y", 3)
		p.Assign("z", 5)
		return p
	}
	a, b := build(), build()
	for _, k := range a.sortedKeys() {
		ca, _ := a.Lookup(k.Topic, k.Partition)
		cb, _ := b.Lookup(k.Topic, k.Partition)
		if ca != cb {
			t.Fatalf("%v: %d vs %d", k, ca, cb)
		}
	}
}

func TestPlacementMoveAndRemove(t *testing.T) {
	p := NewPlacement(2)
	p.Assign("t", 2) // t/0→0, t/1→1
	v := p.Version()
	if err := p.Move("t", 0, 1); err != nil {
		t.Fatal(err)
	}
	if c, _ := p.Lookup("t", 0); c != 1 || p.LoadOf(0) != 0 || p.LoadOf(1) != 2 {
		t.Fatalf("after move: core %d loads %d/%d", c, p.LoadOf(0), p.LoadOf(1))
	}
	if p.Version() <= v {
		t.Fatal("Move did not bump the version")
	}
	if err := p.Move("t", 0, 2); !errors.Is(err, ErrNoCore) {
		t.Fatalf("move to core 2 of 2: %v", err)
	}
	if n := p.Remove("t"); n != 2 || p.Len() != 0 || p.LoadOf(1) != 0 {
		t.Fatalf("Remove = %d, Len %d, load %d", n, p.Len(), p.LoadOf(1))
	}
}

func TestPlacementSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "placement.json")
	p := NewPlacement(3)
	p.Assign("orders", 5)
	p.Assign("logs", 2)
	if err := p.Move("logs", 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	q := NewPlacement(3)
	if err := q.Load(path); err != nil {
		t.Fatal(err)
	}
	if q.Len() != p.Len() || q.Version() != p.Version() {
		t.Fatalf("loaded %d entries v%d, saved %d v%d", q.Len(), q.Version(), p.Len(), p.Version())
	}
	for _, k := range p.sortedKeys() {
		want, _ := p.Lookup(k.Topic, k.Partition)
		if got, ok := q.Lookup(k.Topic, k.Partition); !ok || got != want {
			t.Fatalf("%v: got %d, want %d", k, got, want)
		}
	}
	for c := CoreID(0); c < 3; c++ {
		if p.LoadOf(c) != q.LoadOf(c) {
			t.Fatalf("core %d load %d vs %d", c, q.LoadOf(c), p.LoadOf(c))
		}
	}
	// Saving again overwrites atomically and leaves no temporary behind.
	p.Assign("more", 1)
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only placement.json", len(entries))
	}
}

func TestPlacementLoadFewerCores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.json")
	p := NewPlacement(4)
	p.Assign("t", 8) // two per core
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	q := NewPlacement(2)
	if err := q.Load(path); err != nil {
		t.Fatal(err)
	}
	for i := int32(0); i < 8; i++ {
		c, ok := q.Lookup("t", i)
		if !ok || c > 1 {
			t.Fatalf("t/%d on core %d (ok=%v)", i, c, ok)
		}
		if old, _ := p.Lookup("t", i); old <= 1 && old != c {
			t.Fatalf("t/%d moved from surviving core %d to %d", i, old, c)
		}
	}
	if q.LoadOf(0) != 4 || q.LoadOf(1) != 4 {
		t.Fatalf("loads %d/%d, want 4/4", q.LoadOf(0), q.LoadOf(1))
	}
}

func TestPlacementLoadErrors(t *testing.T) {
	dir := t.TempDir()
	p := NewPlacement(2)
	if err := p.Load(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	cases := map[string]string{
		"garbage":   `{not json`,
		"format":    `{"format":9,"cores":2,"partitions":[]}`,
		"duplicate": `{"format":1,"cores":2,"partitions":[{"topic":"t","partition":0,"core":0},{"topic":"t","partition":0,"core":1}]}`,
		"negative":  `{"format":1,"cores":2,"partitions":[{"topic":"t","partition":-1,"core":0}]}`,
	}
	for name, body := range cases {
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := p.Load(path); err == nil {
			t.Errorf("%s: Load accepted %s", name, body)
		}
	}
}
