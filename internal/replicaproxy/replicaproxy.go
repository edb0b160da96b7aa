// Package replicaproxy sends a request that needs a runner's stream (a pod's
// terminal or output, a service's or task's log) to the control-plane
// replica that holds the stream, when it reached another one. Replicas
// sharing a PostgreSQL database record which of them holds each runner's
// stream; a replica that finds the stream elsewhere proxies the whole
// request there (WebSocket upgrades included), with the caller's own
// credentials, which that replica checks again.
package replicaproxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/runyard/runyard/internal/apperr"
)

// ElsewhereError is the error of a request that needs the stream of a
// runner that is not connected to this replica. It is also an
// apperr.CodeUnavailable error, for a caller that cannot relay.
type ElsewhereError struct {
	OrgID, RunnerID string
}

func (e *ElsewhereError) Error() string {
	return "the runner is not connected to this control plane; try again when it is online"
}

// Unwrap makes it an apperr.CodeUnavailable error with the same message.
func (e *ElsewhereError) Unwrap() error {
	return &apperr.Error{Code: apperr.CodeUnavailable, Message: e.Error()}
}

// Header marks a relayed request, so that it is never relayed twice.
const Header = "X-Runyard-Relayed"

// Proxy relays requests to the replica holding a runner's stream.
type Proxy struct {
	// Self is this replica's URL as the others reach it.
	Self string
	// Find returns the URL of the replica holding the runner's stream, ""
	// when none does.
	Find func(ctx context.Context, orgID, runnerID string) (string, error)
	Log  *slog.Logger
}

// Relay proxies r to the replica holding the stream err names and reports
// whether it did; when it did not (err is another error, no replica holds
// the stream, the request was relayed already), the caller answers with err
// itself.
func (p *Proxy) Relay(w http.ResponseWriter, r *http.Request, err error) bool {
	var e *ElsewhereError
	if p == nil || p.Find == nil || !errors.As(err, &e) || r.Header.Get(Header) != "" {
		return false
	}
	target, ferr := p.Find(r.Context(), e.OrgID, e.RunnerID)
	if ferr != nil {
		p.Log.Warn("find the replica holding a runner's stream", "runner", e.RunnerID, "err", ferr)
		return false
	}
	if target == "" || target == p.Self {
		return false
	}
	u, perr := url.Parse(target)
	if perr != nil {
		p.Log.Warn("a replica's URL is unusable", "url", target, "err", perr)
		return false
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(Header, "1")
		},
		// Followed logs and terminals stream: pass every write on at once.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.Log.Warn("relay to the replica holding a runner's stream", "replica", target, "err", err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(`{"error":"the control plane holding the runner's stream did not answer","code":"unavailable"}` + "\n"))
		},
	}
	rp.ServeHTTP(w, r)
	return true
}

// Sessions is the record of which replica holds each runner's stream.
type Sessions interface {
	// RecordRunnerSession records that replica holds runnerID's stream
	// since since, replacing a record of an older stream (never a newer
	// one's).
	RecordRunnerSession(ctx context.Context, orgID, runnerID, replica string, since time.Time) error
	// EndRunnerSession forgets runnerID's stream that replica started at
	// since; the record of any other stream stays.
	EndRunnerSession(ctx context.Context, runnerID, replica string, since time.Time) error
	// FindRunnerSession returns the replica holding runnerID's stream, ""
	// when none does.
	FindRunnerSession(ctx context.Context, orgID, runnerID string) (string, error)
}
