package connectapi_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	_ "github.com/jackc/pgx/v5/stdlib" // the held transaction's connection
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/testutil"
)

// The change feed under load: many watchers and concurrent writers, a
// watcher that stops reading, and (PostgreSQL) a transaction that holds an
// event id while later ones commit.

// stalledWatch opens a Connect (binary) WatchEvents stream over a
// connection of its own and reads nothing until read is called: a client
// whose socket fills.
type stalledWatch struct {
	res *http.Response
}

func openStalled(t *testing.T, baseURL string) *stalledWatch {
	t.Helper()
	body, err := proto.Marshal(orgWide)
	mustOK(t, err, "marshal")
	env := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(env[1:], uint32(len(body)))
	sctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(sctx, http.MethodPost, baseURL+gitpodv1connect.EventServiceWatchEventsProcedure, bytes.NewReader(append(env, body...)))
	mustOK(t, err, "request")
	req.Header.Set("Content-Type", "application/connect+proto")
	req.Header.Set("Authorization", bearer(testutil.AdminToken))
	res, err := streamClient(t, false).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("watch: %v", err)
	}
	t.Cleanup(func() { cancel(); res.Body.Close() })
	if res.StatusCode != http.StatusOK || res.Header.Get("Runyard-Watch-Started") == "" {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("watch: %s %s", res.Status, b)
	}
	return &stalledWatch{res: res}
}

// read skips the events up to the one of resource from, then reads n,
// bounded in time.
func (s *stalledWatch) read(t *testing.T, from string, n int) []*gitpodv1.WatchEventsResponse {
	t.Helper()
	type result struct {
		evs []*gitpodv1.WatchEventsResponse
		err error
	}
	done := make(chan result, 1)
	go func() {
		br := bufio.NewReader(s.res.Body)
		var out []*gitpodv1.WatchEventsResponse
		var head [5]byte
		skipping := true
		for len(out) < n {
			if _, err := io.ReadFull(br, head[:]); err != nil {
				done <- result{out, err}
				return
			}
			b := make([]byte, binary.BigEndian.Uint32(head[1:]))
			if _, err := io.ReadFull(br, b); err != nil {
				done <- result{out, err}
				return
			}
			if head[0]&2 != 0 {
				done <- result{out, fmt.Errorf("end of stream: %s", b)}
				return
			}
			m := new(gitpodv1.WatchEventsResponse)
			if err := proto.Unmarshal(b, m); err != nil {
				done <- result{out, err}
				return
			}
			if !skipping {
				out = append(out, m)
			}
			skipping = skipping && m.GetResourceId() != from
		}
		done <- result{out, nil}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("the stalled watcher, after %d events of %d: %v", len(r.evs), n, r.err)
		}
		return r.evs
	case <-time.After(60 * time.Second):
		t.Fatalf("the stalled watcher did not get %d events", n)
		return nil
	}
}

// TestEvents_ManyWatchers: with dozens of watchers and concurrent writers
// (on PostgreSQL committing their event ids out of order), every watcher
// gets every change once, in the same order (cursors increasing), and each
// runner's changes in the order they were made; a watcher that reads
// nothing meanwhile holds neither the writers nor the others up, and gets
// the same once it reads.
func TestEvents_ManyWatchers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		p := protocols[1]
		admin := newClient(t, ts.URL, p, bearer(testutil.AdminToken))
		const writers, each, watchers = 8, 40, 24
		runnerIDs := make([]string, writers)
		for i := range runnerIDs {
			r, _ := mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: name("fan"), Provider: provLinux})
			runnerIDs[i] = r.GetRunnerId()
		}
		stalled := openStalled(t, ts.URL)
		var ws []*watcher
		for range watchers {
			w, err := watchConnect(t, ts.URL, p, bearer(testutil.AdminToken), orgWide)
			mustOK(t, err, "watch")
			ws = append(ws, w)
		}
		// The runners' creations may come to a watch started just after
		// them: every watcher starts counting after a marker.
		start := marker(t, admin)
		for _, w := range ws {
			w.until(t, start)
		}
		// Each writer renames its own runner: a runner's events are in the
		// order of its writer's calls.
		var wg sync.WaitGroup
		for i, id := range runnerIDs {
			wg.Go(func() {
				for j := range each {
					_, err := admin.Runners.UpdateRunner(context.Background(), connect.NewRequest(&gitpodv1.UpdateRunnerRequest{
						RunnerId: id, Name: ptr(fmt.Sprintf("fan-%d-%d-%s", i, j, name("n")))}))
					if err != nil {
						t.Errorf("rename %s: %v", id, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		check := func(who string, cursors []string, evs []ev) []string {
			t.Helper()
			perRunner := map[string]int{}
			for k, e := range evs {
				if e.typ != rtRunner || e.op != opUpdate {
					t.Fatalf("%s: event %d is %v", who, k, e)
				}
				perRunner[e.id]++
				if k > 0 {
					prev, _ := strconv.ParseInt(cursors[k-1], 10, 64)
					cur, _ := strconv.ParseInt(cursors[k], 10, 64)
					if cur <= prev {
						t.Fatalf("%s: cursor %d after %d", who, cur, prev)
					}
				}
			}
			for _, id := range runnerIDs {
				if perRunner[id] != each {
					t.Fatalf("%s: %d events of runner %s, want %d", who, perRunner[id], id, each)
				}
			}
			return cursors
		}
		var first []string
		for i, w := range ws {
			var cursors []string
			var evs []ev
			deadline := time.After(60 * time.Second)
			for len(evs) < writers*each {
				select {
				case m, ok := <-w.events:
					if !ok {
						t.Fatalf("watcher %d ended after %d events: %v", i, len(evs), <-w.done)
					}
					cursors, evs = append(cursors, m.GetCursor()), append(evs, evOf(m))
				case <-deadline:
					t.Fatalf("watcher %d: %d events of %d", i, len(evs), writers*each)
				}
			}
			got := check(fmt.Sprintf("watcher %d", i), cursors, evs)
			if first == nil {
				first = got
			} else if !slices.Equal(got, first) {
				t.Fatalf("watcher %d saw another order than watcher 0", i)
			}
		}
		var cursors []string
		var evs []ev
		for _, m := range stalled.read(t, start.id, writers*each) {
			cursors, evs = append(cursors, m.GetCursor()), append(evs, evOf(m))
		}
		if got := check("the stalled watcher", cursors, evs); !slices.Equal(got, first) {
			t.Fatal("the stalled watcher saw another order than the others")
		}
	})
}

// TestEvents_HeldTransaction (PostgreSQL): events come in the order they
// commit. An event whose transaction is still open holds nothing back: the
// events committed after it come at once, and it comes after them when it
// commits, with a later cursor (never one below a cursor already given, so
// a watcher resuming from the last one it saw misses nothing); one rolled
// back never comes.
func TestEvents_HeldTransaction(t *testing.T) {
	ts := testutil.StartServer(t, testutil.Postgres)
	p := protocols[1]
	admin := newClient(t, ts.URL, p, bearer(testutil.AdminToken))
	db, err := sql.Open("pgx", ts.DatabaseURL())
	mustOK(t, err, "open the database")
	t.Cleanup(func() { db.Close() })
	held, _ := mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: name("held"), Provider: provLinux})
	w, err := watchConnect(t, ts.URL, p, bearer(testutil.AdminToken), orgWide)
	mustOK(t, err, "watch")
	// The runner's creation may come to a watch started just after it.
	w.until(t, marker(t, admin))

	for _, commit := range []bool{true, false} {
		t.Run(map[bool]string{true: "commit", false: "rollback"}[commit], func(t *testing.T) {
			tx, err := db.BeginTx(context.Background(), nil)
			mustOK(t, err, "begin")
			defer tx.Rollback()
			// The trigger writes the event now; it commits later.
			res, err := tx.Exec(`UPDATE runners SET name = $1 WHERE id = $2`, name("held"), held.GetRunnerId())
			mustOK(t, err, "rename in a held transaction")
			if n, _ := res.RowsAffected(); n != 1 {
				t.Fatalf("renamed %d runners", n)
			}
			after := marker(t, admin)
			if got := w.take(t, 1); fmt.Sprint(got) != fmt.Sprint([]ev{after}) {
				t.Fatalf("while a transaction is held: got %v, want %v", got, after)
			}
			afterCursor := w.last
			// A watcher that resumes from the event committed last.
			resumed, err := watchConnect(t, ts.URL, p, bearer(testutil.AdminToken),
				&gitpodv1.WatchEventsRequest{Scope: orgWide.Scope, Cursor: afterCursor})
			mustOK(t, err, "resume")
			if commit {
				mustOK(t, tx.Commit(), "commit")
			} else {
				mustOK(t, tx.Rollback(), "rollback")
			}
			last := marker(t, admin)
			var want []ev
			if commit {
				want = append(want, ev{rtRunner, opUpdate, held.GetRunnerId()})
			}
			want = append(want, last)
			for who, w := range map[string]*watcher{"the watcher": w, "the resumed watcher": resumed} {
				if got := w.take(t, len(want)); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s: got %v, want %v", who, got, want)
				}
				if a, b := cursorOf(t, afterCursor), cursorOf(t, w.last); b <= a {
					t.Fatalf("%s: cursor %d after %d", who, b, a)
				}
			}
		})
	}
}

func cursorOf(t *testing.T, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	mustOK(t, err, "cursor")
	return v
}
