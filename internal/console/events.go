package console

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/runyard/runyard/internal/events"
)

// events is the pages' live feed: server-sent events over the change feed
// (events.Service.Watch, the rules of WatchEvents), one "change" message
// per batch of events, naming the kinds that changed: the organization's
// (runners, environments, secrets), or with ?environment=ID that
// environment's (its services, tasks and executions too). The page refetches
// its live parts; nothing but kinds and ids crosses this stream. A comment
// every 20 s keeps proxies from closing an idle stream; the browser's
// EventSource reconnects by itself after a restart (retry: 1000).
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	ctx, _, err := h.caller(r)
	if err != nil {
		h.renderError(w, r, nil, err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc := http.NewResponseController(w)
	ready := make(chan struct{})
	started := func() { close(ready) }
	writes := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- h.svc.Events.Watch(ctx, events.WatchRequest{EnvironmentID: r.URL.Query().Get("environment")}, started, func(e events.Event, more bool) error {
			select {
			case writes <- e.ResourceType:
			default: // a refetch is already due
			}
			return nil
		})
	}()
	select {
	case <-ready:
		hd := w.Header()
		hd.Set("Content-Type", "text/event-stream")
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "retry: 1000\n: watching\n\n")
		_ = rc.Flush()
	case err := <-errc:
		if err == nil {
			err = ctx.Err()
		}
		h.renderError(w, r, nil, err)
		return
	}
	ping := time.NewTicker(20 * time.Second)
	defer ping.Stop()
	for {
		select {
		case kind := <-writes:
			if _, err := fmt.Fprintf(w, "data: %s\n\n", kind); err != nil {
				return
			}
			_ = rc.Flush()
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
			_ = rc.Flush()
		case <-errc:
			// The hub closed (the control plane stops) or the watch
			// failed: the browser reconnects.
			return
		case <-ctx.Done():
			return
		}
	}
}
