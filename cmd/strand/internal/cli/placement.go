package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// The placement commands talk to Strand's admin HTTP API (--admin), not
// the Kafka protocol, which has no notion of cores. The JSON shapes below
// are the API's (cluster/adminapi/placement.go); they are spelled again
// here because the CLI never links the broker.

type placementView struct {
	WindowSeconds float64 `json:"window_seconds"`
	Cores         []struct {
		Core           int     `json:"core"`
		Partitions     int     `json:"partitions"`
		BytesInPerSec  float64 `json:"bytes_in_per_sec"`
		BytesOutPerSec float64 `json:"bytes_out_per_sec"`
		Load           float64 `json:"load"`
		Busy           float64 `json:"busy"`
	} `json:"cores"`
	Partitions []struct {
		Topic          string  `json:"topic"`
		Partition      int32   `json:"partition"`
		Core           int     `json:"core"`
		BytesInPerSec  float64 `json:"bytes_in_per_sec"`
		BytesOutPerSec float64 `json:"bytes_out_per_sec"`
		Load           float64 `json:"load"`
		Busy           float64 `json:"busy"`
	} `json:"partitions"`
}

type placementMove struct {
	Topic       string  `json:"topic"`
	Partition   int32   `json:"partition"`
	FromCore    int     `json:"from_core"`
	ToCore      int     `json:"to_core"`
	BytesPerSec float64 `json:"bytes_per_sec,omitempty"`
}

type rebalanceResult struct {
	DryRun bool            `json:"dry_run"`
	Moves  []placementMove `json:"moves"`
	Error  string          `json:"error,omitempty"`
	Hint   string          `json:"hint,omitempty"`
}

func placementCmd(g *globals) *cobra.Command {
	show := &cobra.Command{
		Use:   "show",
		Short: "Show every partition's core and each core's load over the last minute",
		Args:  exactArgs(0, "no arguments"),
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			var v placementView
			if err := g.adminCall(cmd.Context(), http.MethodGet, "/v1/placement", nil, &v); err != nil {
				return err
			}
			if g.json {
				return writeJSON(g.env.Stdout, v)
			}
			fmt.Fprintf(g.env.Stdout, "LOAD OVER THE LAST %.0fs\n\n", v.WindowSeconds)
			tb := newTable(g.env.Stdout, "CORE", "PARTITIONS", "IN/S", "OUT/S", "BUSY")
			for _, c := range v.Cores {
				tb.row(c.Core, c.Partitions, humanBytes(c.BytesInPerSec), humanBytes(c.BytesOutPerSec), percent(c.Busy))
			}
			tb.flush()
			fmt.Fprintln(g.env.Stdout)
			tb = newTable(g.env.Stdout, "TOPIC", "PARTITION", "CORE", "IN/S", "OUT/S", "BUSY")
			for _, p := range v.Partitions {
				tb.row(p.Topic, p.Partition, p.Core, humanBytes(p.BytesInPerSec), humanBytes(p.BytesOutPerSec), percent(p.Busy))
			}
			tb.flush()
			return nil
		}),
	}
	move := &cobra.Command{
		Use:   "move TOPIC PARTITION CORE",
		Short: "Move one partition to another core of its broker, while clients use it",
		Args:  exactArgs(3, "TOPIC PARTITION CORE"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			part, err := strconv.ParseInt(args[1], 10, 32)
			if err != nil || part < 0 {
				return usageErrorf("PARTITION %q: want a partition number", args[1])
			}
			core, err := strconv.Atoi(args[2])
			if err != nil || core < 0 {
				return usageErrorf("CORE %q: want a core number (`strand placement show` lists them)", args[2])
			}
			body, _ := json.Marshal(map[string]any{"topic": args[0], "partition": part, "core": core})
			var m placementMove
			if err := g.adminCall(cmd.Context(), http.MethodPost, "/v1/placement/move", body, &m); err != nil {
				return err
			}
			if g.json {
				return writeJSON(g.env.Stdout, m)
			}
			if m.FromCore == m.ToCore {
				fmt.Fprintf(g.env.Stdout, "%s/%d is already on core %d\n", m.Topic, m.Partition, m.ToCore)
				return nil
			}
			fmt.Fprintf(g.env.Stdout, "moved %s/%d from core %d to core %d\n", m.Topic, m.Partition, m.FromCore, m.ToCore)
			return nil
		}),
	}
	var dryRun bool
	rebalance := &cobra.Command{
		Use:   "rebalance",
		Short: "Move partitions off the hottest cores, from the load measured over the last minute",
		Args:  exactArgs(0, "no arguments"),
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			var r rebalanceResult
			path := "/v1/placement/rebalance"
			if dryRun {
				path += "?dry_run=true"
			}
			err := g.adminCall(cmd.Context(), http.MethodPost, path, nil, &r)
			if g.json && (err == nil || r.Moves != nil) {
				if werr := writeJSON(g.env.Stdout, r); werr != nil {
					return werr
				}
			} else if r.Moves != nil {
				printMoves(g, r)
			}
			return err
		}),
	}
	rebalance.Flags().BoolVar(&dryRun, "dry-run", false, "print the moves without making them")
	return parentCmd("placement", "Show and change which core owns each partition (admin API)", show, move, rebalance)
}

func printMoves(g *globals, r rebalanceResult) {
	if len(r.Moves) == 0 && r.Error == "" {
		fmt.Fprintln(g.env.Stdout, "balanced: no move would lower the hottest core's load by the rebalance margin")
		return
	}
	verb := "MOVED"
	if r.DryRun {
		verb = "WOULD MOVE"
	}
	tb := newTable(g.env.Stdout, verb, "FROM CORE", "TO CORE", "LOAD/S")
	for _, m := range r.Moves {
		tb.row(fmt.Sprintf("%s/%d", m.Topic, m.Partition), m.FromCore, m.ToCore, humanBytes(m.BytesPerSec))
	}
	tb.flush()
}

// adminCall sends a request to the admin API and decodes its JSON answer
// into out (an error answer too, when out has room for it). An answer
// other than 2xx is a failed operation with the API's message and hint;
// no answer at all is an unreachable broker (exit 3).
func (g *globals) adminCall(ctx context.Context, method, path string, body []byte, out any) error {
	base := strings.TrimRight(g.admin, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	ctx, cancel := context.WithTimeout(ctx, max(g.connectTimeout, adminCallTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return usageErrorf("--admin %q: %v", g.admin, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &exitError{ExitUnreachable, fmt.Errorf("cannot reach the admin API at %s: is `strand serve` running with --admin-listen? set --admin (%v)", g.admin, err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return classify(err)
	}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			return failedf("the admin API at %s answered %s with something else than JSON: %v", g.admin, path, err)
		}
		return nil
	}
	_ = json.Unmarshal(b, out) // a rebalance that stopped half way lists the moves made
	var e struct{ Error, Hint string }
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		return failedf("the admin API at %s answered %s %s: %s (is --admin a Strand admin API?)", g.admin, method, path, resp.Status)
	}
	if e.Hint != "" {
		return failedf("%s (%s)", e.Error, e.Hint)
	}
	return failedf("%s", e.Error)
}

// adminCallTimeout bounds an admin API call; a move waits for the log to
// close on one core and open on another.
const adminCallTimeout = 90 * time.Second

func humanBytes(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.1f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

func percent(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }
