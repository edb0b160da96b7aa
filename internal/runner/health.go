package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// health is what the runner's own health endpoint reports. Liveness is the
// daemon's loop making progress: a control plane that is away does not make
// the runner unhealthy (restarting it would not help), a wedged loop does.
// Readiness is having a live stream to the control plane.
//
// The components' verdicts are in the body of /healthz but do not fail it: a
// restart fixes neither a full disk nor a replaced directory, and the
// control plane already shows the runner DEGRADED with the reason.
type health struct {
	connected atomic.Bool
	progress  atomic.Int64 // unix nanoseconds of the loop's last step
	interval  atomic.Int64 // the renew interval the control plane gave
	// sessions counts the streams established (welcome received);
	// stepAtLoss is the backoff's step for the first wait after the last
	// one broke. Both show in /healthz, so that reconnecting can be
	// watched from outside.
	sessions   atomic.Int64
	stepAtLoss atomic.Int64
	// components are the latest verdicts (checkComponents), in report
	// order; nil before the first check.
	components atomic.Pointer[[]componentHealth]
}

// stallAfter is how long the loop may go without a step before /healthz
// fails: well above the longest wait in the loop (a backoff of 30s, three
// renew intervals).
func (h *health) stallAfter() time.Duration {
	return max(2*time.Minute, 3*time.Duration(h.interval.Load()))
}

func (h *health) step() { h.progress.Store(time.Now().UnixNano()) }

func (h *health) handler() *http.ServeMux {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, ok bool, body map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(body)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		since := time.Since(time.Unix(0, h.progress.Load()))
		ok := since < h.stallAfter()
		status := "ok"
		if !ok {
			status = fmt.Sprintf("stalled: no progress for %s", since.Round(time.Second))
		}
		body := map[string]any{"status": status, "connected": h.connected.Load(),
			"reconnect": map[string]int64{"sessions": h.sessions.Load(), "stepAtLoss": h.stepAtLoss.Load()}}
		if c := h.components.Load(); c != nil {
			body["components"] = *c
		}
		reply(w, ok, body)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ok := h.connected.Load()
		status := "connected"
		if !ok {
			status = "not connected to the control plane"
		}
		reply(w, ok, map[string]any{"status": status, "connected": ok})
	})
	return mux
}

// serveHealth serves the health endpoint on addr until ctx ends.
func (d *Daemon) serveHealth(ctx context.Context, addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health endpoint: %w", err)
	}
	mux := d.health.handler()
	// Prometheus scrapes the runner where the health checks are.
	mux.Handle("GET /metrics", d.metricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("health endpoint stopped", "err", err)
		}
	}()
	d.log.Info("serving /healthz, /readyz and /metrics", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}
