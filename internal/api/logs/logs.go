// Package logs serves the logs of service runs and task executions at the
// URLs the control plane puts in status.logUrl: GET /logs/{runner}/{log}
// returns the log as text, ?follow=1 streams it until the run ends. It takes
// an API key with environments:read, or a logs token of the log's
// environment (CreateEnvironmentLogsToken), for which following is the
// default. A runner has no inbound port, so the control plane asks the runner
// for the log over its stream (fleet.OpenLog) and relays it.
package logs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/runyard/runyard/internal/api/apiauth"
	"github.com/runyard/runyard/internal/api/jsonerr"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/replicaproxy"
)

// Path is the pattern of a log URL's path.
const Path = "/logs/{runner}/{log}"

// URL is the log URL of log logID on runner runnerID, under base (the
// control plane's public URL).
func URL(base, runnerID, logID string) string {
	return strings.TrimRight(base, "/") + "/logs/" + runnerID + "/" + logID
}

// Opener reaches a runner for one of its logs (fleet.Fleet).
type Opener interface {
	OpenLog(ctx context.Context, orgID, runnerID, logID string, follow bool) (io.ReadCloser, error)
}

// Authorizer decides whether the caller may read a log
// (environments.Service.AuthorizeLog): an API key with
// environments:read, or a logs token of the log's environment.
type Authorizer interface {
	AuthorizeLog(ctx context.Context, runnerID, logID string) error
}

// Mount registers the log endpoint on mux.
// proxy, when not nil, relays a log of a runner connected to another
// replica there.
func Mount(mux *http.ServeMux, auth apiauth.Authenticator, authz Authorizer, open Opener, proxy *replicaproxy.Proxy, log *slog.Logger) {
	h := &handler{auth: auth, authz: authz, open: open, proxy: proxy, log: log}
	mux.HandleFunc(Routes()[0], h.serve)
}

// Routes lists the patterns Mount registers; the authorization matrix test
// (internal/api/authzmatrix) checks that docs/authorization.md has each.
func Routes() []string { return []string{"GET " + Path} }

type handler struct {
	auth  apiauth.Authenticator
	authz Authorizer
	open  Opener
	proxy *replicaproxy.Proxy
	log   *slog.Logger
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request) {
	ctx, err := apiauth.Authenticate(r.Context(), h.auth, r.Header)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	c, err := identity.RequireLogs(ctx, r.PathValue("runner"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	// A logs token is what the vendor's SDKs read status.logUrl with
	// (CreateEnvironmentLogsToken); they read the log as a stream to the
	// end of its run, so for them following is the default.
	follow := c.Logs != nil
	if v := r.URL.Query().Get("follow"); v != "" {
		if follow, err = strconv.ParseBool(v); err != nil {
			h.writeError(w, r, apperr.Invalid("follow", "must be true, false, 1 or 0, not %q", v))
			return
		}
	}
	if err := identity.ValidateUUID("runner", r.PathValue("runner")); err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := h.authz.AuthorizeLog(ctx, r.PathValue("runner"), r.PathValue("log")); err != nil {
		h.writeError(w, r, err)
		return
	}
	rc, err := h.open.OpenLog(ctx, c.OrgID, r.PathValue("runner"), r.PathValue("log"), follow)
	if err != nil {
		if !h.proxy.Relay(w, r, err) {
			h.writeError(w, r, err)
		}
		return
	}
	defer rc.Close()
	stop := context.AfterFunc(r.Context(), func() { rc.Close() })
	defer stop()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flush := http.NewResponseController(w)
	if c, ok := rc.(chunker); ok {
		// Each of the runner's messages (up to 256 KiB) is written as it
		// came, with no copy, and flushed.
		err := c.Chunks(func(b []byte) error {
			if _, err := w.Write(b); err != nil {
				return errWriteResponse
			}
			if follow {
				_ = flush.Flush()
			}
			return nil
		})
		if err != nil && !errors.Is(err, errWriteResponse) && r.Context().Err() == nil {
			h.log.Warn("relay log", "runner", r.PathValue("runner"), "log", r.PathValue("log"), "err", err)
		}
		return
	}
	// As large as the runner's messages of a log (256 KiB): one write and
	// one flush per message, not eight.
	buf := make([]byte, 256<<10)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if follow {
				_ = flush.Flush()
			}
		}
		if err != nil {
			// The response is under way: a broken runner stream can only
			// end it.
			if !errors.Is(err, io.EOF) && r.Context().Err() == nil {
				h.log.Warn("relay log", "runner", r.PathValue("runner"), "log", r.PathValue("log"), "err", err)
			}
			return
		}
	}
}

// chunker is a log that hands out its chunks as they came
// (fleet.LogReader.Chunks), each valid only during the call.
type chunker interface {
	Chunks(write func([]byte) error) error
}

// errWriteResponse stops Chunks when the client went away: nothing to log.
var errWriteResponse = errors.New("write the log's response")

func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	jsonerr.Write(w, r, h.log, err)
}
