package console

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/runyard/runyard/internal/apperr"
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
	var once sync.Once
	started := func() { once.Do(func() { close(ready) }) }
	// The feed starts where the page was read (?cursor), or, after a
	// reconnect, after the last event the browser got (Last-Event-ID).
	cursor := r.Header.Get("Last-Event-ID")
	if cursor == "" {
		cursor = r.URL.Query().Get("cursor")
	}
	writes := make(chan events.Event, 1)
	errc := make(chan error, 1)
	go func() {
		req := events.WatchRequest{EnvironmentID: r.URL.Query().Get("environment"), Cursor: cursor, Console: true}
		if k := r.URL.Query().Get("kinds"); k != "" {
			req.Kinds = strings.Split(k, ",")
		}
		fn := func(e events.Event, more bool) error {
			select {
			case writes <- e:
			default:
				// A refetch is already due; keep the newest id.
				select {
				case <-writes:
				default:
				}
				writes <- e
			}
			return nil
		}
		err := h.svc.Events.Watch(ctx, req, started, fn)
		if apperr.Is(err, apperr.CodeFailedPrecondition) && req.Cursor != "" {
			// Older than the feed keeps (a long outage): from now, and
			// the page refetches at once.
			req.Cursor = ""
			writes <- events.Event{ResourceType: "RESOURCE_TYPE_UNSPECIFIED"}
			err = h.svc.Events.Watch(ctx, req, started, fn)
		}
		errc <- err
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
		case e := <-writes:
			id := ""
			if e.ID > 0 {
				id = fmt.Sprintf("id: %d\n", e.ID)
			}
			if _, err := fmt.Fprintf(w, "%sdata: %s\n\n", id, e.ResourceType); err != nil {
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
