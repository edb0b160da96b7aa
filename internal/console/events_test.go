package console_test

import (
	"bufio"
	"context"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/testutil"
)

// TestConsole_EventsFromCursor checks the pages' live feed: it starts at
// the position the page was read at (data-cursor), so a change made before
// the page's feed starts still reaches it, with the event's id for
// Last-Event-ID; resuming after that id gets only what came later.
func TestConsole_EventsFromCursor(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			e := newEnv(t, backend)
			_, page := e.request(t, http.MethodGet, "/runners", testutil.AdminToken, nil, nil)
			m := regexp.MustCompile(`data-cursor="(\d+)"`).FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("the runners page has no data-cursor:\n%.500s", page)
			}
			// The page's own feed: the kinds that wake it.
			f := regexp.MustCompile(`data-events="([^"]+)"`).FindStringSubmatch(page)
			if f == nil || !strings.Contains(f[1], "kinds=") {
				t.Fatalf("the runners page names no feed of its kinds:\n%.500s", page)
			}
			feed := html.UnescapeString(f[1]) + "&cursor=" + m[1]
			e.createRunner(t, "between-read-and-feed")

			first := readEvent(t, e, feed, "")
			if !strings.Contains(first, "data: RESOURCE_TYPE_RUNNER") {
				t.Fatalf("first event from the page's cursor = %q", first)
			}
			id := regexp.MustCompile(`id: (\d+)`).FindStringSubmatch(first)
			if id == nil {
				t.Fatalf("the event has no id: %q", first)
			}
			e.createRunner(t, "after-the-first")
			next := readEvent(t, e, feed, id[1])
			nid := regexp.MustCompile(`id: (\d+)`).FindStringSubmatch(next)
			if nid == nil || atoi(t, nid[1]) <= atoi(t, id[1]) {
				t.Fatalf("after Last-Event-ID %s the feed sent %q", id[1], next)
			}
		})
	}
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// readEvent opens the feed and returns its first event (comments skipped).
func readEvent(t *testing.T, e *env, path, lastID string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testutil.AdminToken)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, ct)
	}
	checkHeaders(t, "GET "+path, res)
	sc := bufio.NewScanner(res.Body)
	var ev []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "" && len(ev) > 0:
			return strings.Join(ev, "\n")
		case line == "" || strings.HasPrefix(line, ":") || strings.HasPrefix(line, "retry:"):
		default:
			ev = append(ev, line)
		}
	}
	t.Fatalf("GET %s: the feed ended without an event: %v", path, sc.Err())
	return ""
}
