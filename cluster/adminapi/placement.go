package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/strand-io/strand/cluster"
	"github.com/strand-io/strand/reactor"
)

// Placer is the live-placement side of the node; *cluster.Node implements
// it.
type Placer interface {
	Placement() cluster.PlacementView
	MovePartition(ctx context.Context, topic string, partition int32, core reactor.CoreID) (reactor.CoreID, error)
	Rebalance(ctx context.Context, dryRun bool) ([]cluster.Move, error)
}

var _ Placer = (*cluster.Node)(nil)

// moveTimeout bounds how long a move or rebalance request waits; the move
// itself still completes if the wait ends.
const moveTimeout = 60 * time.Second

type placementJSON struct {
	WindowSeconds float64             `json:"window_seconds"`
	Cores         []coreLoadJSON      `json:"cores"`
	Partitions    []partitionLoadJSON `json:"partitions"`
}

type coreLoadJSON struct {
	Core           int     `json:"core"`
	Partitions     int     `json:"partitions"`
	BytesInPerSec  float64 `json:"bytes_in_per_sec"`
	BytesOutPerSec float64 `json:"bytes_out_per_sec"`
	Load           float64 `json:"load"` // bytes in + out per second, what rebalancing evens out
	Busy           float64 `json:"busy"` // fraction of the window the core worked
}

type partitionLoadJSON struct {
	Topic          string  `json:"topic"`
	Partition      int32   `json:"partition"`
	Core           int     `json:"core"`
	BytesInPerSec  float64 `json:"bytes_in_per_sec"`
	BytesOutPerSec float64 `json:"bytes_out_per_sec"`
	Load           float64 `json:"load"`
	Busy           float64 `json:"busy"` // estimated: its share of its core's bytes times the core's busy
}

type moveJSON struct {
	Topic       string  `json:"topic"`
	Partition   int32   `json:"partition"`
	FromCore    int     `json:"from_core"`
	ToCore      int     `json:"to_core"`
	BytesPerSec float64 `json:"bytes_per_sec,omitempty"`
}

// placer answers 501 when the broker does not do live placement.
func (s *Server) placer(w http.ResponseWriter, b Broker) (Placer, bool) {
	p, ok := b.(Placer)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this broker does not place partitions live", "upgrade the broker")
	}
	return p, ok
}

func placementOf(v cluster.PlacementView) placementJSON {
	out := placementJSON{WindowSeconds: v.Window.Seconds(), Cores: []coreLoadJSON{}, Partitions: []partitionLoadJSON{}}
	for _, c := range v.Cores {
		out.Cores = append(out.Cores, coreLoadJSON{Core: int(c.Core), Partitions: c.Partitions, BytesInPerSec: c.BytesInPerSec,
			BytesOutPerSec: c.BytesOutPerSec, Load: c.Load(), Busy: c.Busy})
	}
	for _, p := range v.Partitions {
		out.Partitions = append(out.Partitions, partitionLoadJSON{Topic: p.Topic, Partition: p.Partition, Core: int(p.Core),
			BytesInPerSec: p.BytesInPerSec, BytesOutPerSec: p.BytesOutPerSec, Load: p.Load(), Busy: p.Busy})
	}
	return out
}

func (s *Server) placement(w http.ResponseWriter, _ *http.Request, b Broker) {
	p, ok := s.placer(w, b)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, placementOf(p.Placement()))
}

// moveRequest is POST /v1/placement/move's body; pointers tell a missing
// field from a zero.
type moveRequest struct {
	Topic     string `json:"topic"`
	Partition *int32 `json:"partition"`
	Core      *int   `json:"core"`
}

func (s *Server) move(w http.ResponseWriter, r *http.Request, b Broker) {
	p, ok := s.placer(w, b)
	if !ok {
		return
	}
	const usage = `send {"topic": "orders", "partition": 0, "core": 1}; GET /v1/placement lists partitions and cores`
	var req moveRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "the body is not a move: "+err.Error(), usage)
		return
	}
	if req.Topic == "" || req.Partition == nil || req.Core == nil {
		writeError(w, http.StatusBadRequest, "topic, partition and core are all required", usage)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), moveTimeout)
	defer cancel()
	from, err := p.MovePartition(ctx, req.Topic, *req.Partition, reactor.CoreID(*req.Core))
	if err != nil {
		writeMoveError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, moveJSON{Topic: req.Topic, Partition: *req.Partition, FromCore: int(from), ToCore: *req.Core})
}

func (s *Server) rebalance(w http.ResponseWriter, r *http.Request, b Broker) {
	p, ok := s.placer(w, b)
	if !ok {
		return
	}
	dry := false
	if v := r.URL.Query().Get("dry_run"); v != "" {
		var err error
		if dry, err = strconv.ParseBool(v); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("dry_run=%q is not a boolean", v), "use ?dry_run=true to see the plan without moving anything")
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), moveTimeout)
	defer cancel()
	moves, err := p.Rebalance(ctx, dry)
	out := map[string]any{"dry_run": dry, "moves": movesJSON(moves)}
	if err != nil {
		status, hint := moveErrorStatus(err)
		out["error"], out["hint"] = err.Error(), hint
		writeJSON(w, status, out)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func movesJSON(ms []cluster.Move) []moveJSON {
	out := []moveJSON{}
	for _, m := range ms {
		out = append(out, moveJSON{Topic: m.Topic, Partition: m.Partition, FromCore: int(m.From), ToCore: int(m.To), BytesPerSec: m.Load})
	}
	return out
}

func writeMoveError(w http.ResponseWriter, err error) {
	status, hint := moveErrorStatus(err)
	writeError(w, status, err.Error(), hint)
}

// moveErrorStatus maps a move's error onto an HTTP status and what to do.
func moveErrorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, cluster.ErrUnknownPartition):
		return http.StatusNotFound, "GET /v1/placement or `strand placement show` lists every partition"
	case errors.Is(err, cluster.ErrUnknownCore):
		return http.StatusBadRequest, "GET /v1/brokers or `strand cluster info` lists the broker's cores"
	case errors.Is(err, cluster.ErrNotMovable):
		return http.StatusConflict, "a topic pinned with strand.cores moves only among those cores (change the pin with `strand topic alter-config TOPIC --set strand.cores=...`); a partition another broker holds is moved on that broker"
	case errors.Is(err, cluster.ErrPlacementBusy):
		return http.StatusConflict, "the partition is being created, moved or deleted: retry in a moment"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "the move is still running: check GET /v1/placement before retrying"
	}
	return http.StatusInternalServerError, "see the broker's log for the cause; the partition is where GET /v1/placement says"
}
