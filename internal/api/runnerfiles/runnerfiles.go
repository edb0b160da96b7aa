// Package runnerfiles serves a runner daemon's own files at the URLs the
// control plane puts in its status: GET /runners/{runner}/log (status.logUrl,
// the daemon's recent log, as text) and GET /runners/{runner}/support-bundle
// (status.supportBundleUrl, a tar.gz the daemon makes on demand). A runner
// has no inbound port, so the control plane asks for the file over the
// runner's stream (fleet.OpenRunnerFile) and relays it, as it does logs.
package runnerfiles

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/runyard/runyard/internal/api/apiauth"
	"github.com/runyard/runyard/internal/api/jsonerr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/replicaproxy"
	"github.com/runyard/runyard/internal/runners"
)

// URL is where file of runner runnerID is served, under base (the control
// plane's public URL).
func URL(base, runnerID string, file runners.File) string {
	return strings.TrimRight(base, "/") + "/runners/" + runnerID + "/" + string(file)
}

// Authorizer decides whether the caller may read a runner's file
// (runners.Service.AuthorizeFile).
type Authorizer interface {
	AuthorizeFile(ctx context.Context, runnerID string, file runners.File) (*runners.Runner, error)
}

// Opener reaches a runner for one of its files (fleet.Fleet).
type Opener interface {
	OpenRunnerFile(ctx context.Context, orgID, runnerID string, file runners.File) (io.ReadCloser, error)
}

var files = []runners.File{runners.FileLog, runners.FileSupportBundle}

// Routes lists the patterns Mount registers; the authorization matrix test
// checks that docs/authorization.md has each.
func Routes() []string {
	out := make([]string, 0, len(files))
	for _, f := range files {
		out = append(out, "GET /runners/{runner}/"+string(f))
	}
	return out
}

// Mount registers the routes on mux. proxy, when not nil, relays a request
// for a runner connected to another replica there.
func Mount(mux *http.ServeMux, auth apiauth.Authenticator, authz Authorizer, open Opener, proxy *replicaproxy.Proxy, log *slog.Logger) {
	for i, f := range files {
		h := &handler{file: f, auth: auth, authz: authz, open: open, proxy: proxy, log: log}
		mux.HandleFunc(Routes()[i], h.serve)
	}
}

type handler struct {
	file  runners.File
	auth  apiauth.Authenticator
	authz Authorizer
	open  Opener
	proxy *replicaproxy.Proxy
	log   *slog.Logger
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request) {
	ctx, err := apiauth.Authenticate(r.Context(), h.auth, r.Header)
	if err != nil {
		jsonerr.Write(w, r, h.log, err)
		return
	}
	id := r.PathValue("runner")
	if _, err := h.authz.AuthorizeFile(ctx, id, h.file); err != nil {
		jsonerr.Write(w, r, h.log, err)
		return
	}
	c, _ := identity.FromContext(ctx)
	rc, err := h.open.OpenRunnerFile(ctx, c.OrgID, id, h.file)
	if err != nil {
		if !h.proxy.Relay(w, r, err) {
			jsonerr.Write(w, r, h.log, err)
		}
		return
	}
	defer rc.Close()
	stop := context.AfterFunc(r.Context(), func() { rc.Close() })
	defer stop()
	if h.file == runners.FileSupportBundle {
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Content-Disposition", `attachment; filename="runner-`+id+`-support-bundle.tar.gz"`)
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil && !errors.Is(err, io.EOF) && r.Context().Err() == nil {
		// The response is under way: a broken runner stream can only end it.
		h.log.Warn("relay runner file", "runner", id, "file", h.file, "err", err)
	}
}
