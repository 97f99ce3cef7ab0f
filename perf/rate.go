package perf

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Rate is a workload's producerRate: a fixed total rate in messages per
// second (0 = as fast as possible), or a percentage of the maximum rate
// measured by a short probe run just before the real one.
type Rate struct {
	PerSecond int64   // total across all producers; used when Percent == 0
	Percent   float64 // > 0: this share of the probed maximum
}

// maxPercent bounds percentage rates; above 100% is allowed on purpose, to
// measure a broker pushed past what it can sustain.
const maxPercent = 1000

// ParseRate parses "50000", "0" or "50%".
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) {
			return Rate{}, fmt.Errorf("want messages per second or a percentage like \"50%%\", got %q", s)
		}
		if f <= 0 || f > maxPercent {
			return Rate{}, fmt.Errorf("percentage must be in (0%%, %d%%], got %q", maxPercent, s)
		}
		return Rate{Percent: f}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return Rate{}, fmt.Errorf("want messages per second (0 = as fast as possible) or a percentage like \"50%%\", got %q", s)
	}
	if f < 0 {
		return Rate{}, fmt.Errorf("must not be negative (0 means as fast as possible), got %s", s)
	}
	if f != math.Trunc(f) || f > 1e12 {
		return Rate{}, fmt.Errorf("want a whole number of messages per second, got %s", s)
	}
	return Rate{PerSecond: int64(f)}, nil
}

// String renders the rate the way a workload file spells it.
func (r Rate) String() string {
	if r.Percent > 0 {
		return strconv.FormatFloat(r.Percent, 'f', -1, 64) + "%"
	}
	return strconv.FormatInt(r.PerSecond, 10)
}

// MarshalJSON writes a number, or a "N%" string for a percentage.
func (r Rate) MarshalJSON() ([]byte, error) {
	if r.Percent > 0 {
		return json.Marshal(r.String())
	}
	return json.Marshal(r.PerSecond)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Rate) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) != nil {
		s = string(b)
	}
	v, err := ParseRate(s)
	*r = v
	return err
}

// KeyDistributor is OMB's key choice, which here also picks the partitioner:
//
//	NO_KEY          no key; sticky partitioning (a batch fills one partition)
//	RANDOM_NANO     a random key per record, hashed (murmur2) to a partition
//	KEY_ROUND_ROBIN key = a counter; partition = counter mod partitions
//	                (manual), so every partition gets the same share
type KeyDistributor string

// The key distributors OMB defines.
const (
	NoKey         KeyDistributor = "NO_KEY"
	RandomNano    KeyDistributor = "RANDOM_NANO"
	KeyRoundRobin KeyDistributor = "KEY_ROUND_ROBIN"
)

func (k KeyDistributor) valid() bool {
	return k == NoKey || k == RandomNano || k == KeyRoundRobin
}

func keyDistributorNames() []string {
	n := []string{string(NoKey), string(RandomNano), string(KeyRoundRobin)}
	sort.Strings(n)
	return n
}
