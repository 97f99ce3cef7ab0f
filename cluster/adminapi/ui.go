package adminapi

import (
	_ "embed"
	"net/http"
)

// page is the live placement page served at /: plain HTML and JS with no
// build step, reading /v1/placement every second (ui/index.html).
//
//go:embed ui/index.html
var page []byte

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		writeError(w, http.StatusNotFound, "no such page: "+r.URL.Path,
			"the live placement page is at /; the JSON API is under /v1/, metrics at /metrics")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(page)
}
