package server

import (
	"encoding/json"
	"net/http"

	"github.com/runyard/runyard/internal/buildinfo"
)

// serveVersion answers GET /version with this control plane's build.
func serveVersion(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(buildinfo.Get())
}
