package connectapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/testutil"
)

// TestRunners_Tombstone deletes a runner whose daemon runs (in this
// process) and follows the runner through every API surface: the daemon
// stops with runner.ErrDeleted (the process would exit 0), GetRunner shows
// it DELETED, its access tokens fail authentication, it is left out of
// every list and of the REST and Kubiya lookups, it refuses changes, a
// second DeleteRunner succeeds, its name is free at once, and it is gone
// once the registry's clock passes the retention.
func TestRunners_Tombstone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		p := protocols[0]
		admin := newClient(t, ts.URL, p, bearer(testutil.AdminToken))
		st := ts.OpenStore(t)
		org, err := st.FindOrganizationByName(ctx, identity.DefaultOrganization)
		mustOK(t, err, "find the default organization")
		runnerName := name("tomb")
		r, exchange := mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: runnerName, Provider: provLinux})
		get := func() (*gitpodv1.Runner, error) {
			res, err := admin.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: r.GetRunnerId()}))
			if err != nil {
				return nil, err
			}
			return res.Msg.GetRunner(), nil
		}

		// A second access token of the runner, like the daemon's own.
		tok, err := admin.Runners.CreateRunnerToken(ctx, connect.NewRequest(&gitpodv1.CreateRunnerTokenRequest{RunnerId: r.GetRunnerId()}))
		mustOK(t, err, "create runner token")
		runnerClient := newClient(t, ts.URL, p, bearer(mustExchange(t, admin, tok.Msg.GetExchangeToken())))
		whoami(t, runnerClient)

		dctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		d, err := runner.New(dctx, runner.Config{Server: ts.URL, ExchangeToken: exchange, StateDir: t.TempDir(),
			Name: "tomb-host", MaxPods: 2, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		mustOK(t, err, "start runner daemon")
		defer d.Close()
		done := make(chan error, 1)
		go func() { done <- d.Run(dctx) }()
		waitUntil(t, "the runner is ACTIVE", func() string {
			got, err := get()
			if err != nil || got.GetStatus().GetPhase() != gitpodv1.RunnerPhase_RUNNER_PHASE_ACTIVE {
				return fmt.Sprintf("phase %v, err %v", got.GetStatus().GetPhase(), err)
			}
			return ""
		})
		// Before the deletion every surface shows the runner, so that
		// their leaving it out afterwards means something.
		surfaces := runnerSurfaces{t: t, url: ts.URL, rest: ts.URL + "/api/v1/orgs/" + org.Name}
		r0, err := st.FindRunnerByID(ctx, org.ID, r.GetRunnerId())
		mustOK(t, err, "find the runner in the store")
		for path, names := range surfaces.lists() {
			if !slices.Contains(names, runnerName) {
				t.Fatalf("%s does not list the live runner: %v", path, names)
			}
		}
		httpJSON(t, fmt.Sprintf("%s/runners/%d", surfaces.rest, r0.Seq), bearer(testutil.AdminToken), http.StatusOK, nil)
		httpJSON(t, ts.URL+"/v1/runners/"+runnerName+"/describe", "UserKey "+testutil.AdminToken, http.StatusOK, nil)
		httpJSON(t, ts.URL+"/api/v3/runners/"+runnerName+"/health", "UserKey "+testutil.AdminToken, http.StatusOK, nil)

		_, err = admin.Runners.DeleteRunner(ctx, connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: r.GetRunnerId()}))
		mustOK(t, err, "delete runner")
		select {
		case err := <-done:
			if !errors.Is(err, runner.ErrDeleted) {
				t.Fatalf("daemon stopped with %v, want runner.ErrDeleted", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the daemon did not stop after its runner was deleted")
		}
		tomb, err := get()
		mustOK(t, err, "get the deleted runner")
		if ph := tomb.GetStatus().GetPhase(); ph != phaseDeleted || tomb.GetSpec().GetDesiredPhase() != phaseDeleted {
			t.Fatalf("deleted runner: phase %v, desired phase %v", ph, tomb.GetSpec().GetDesiredPhase())
		}
		deletedAt := tomb.GetUpdatedAt().AsTime()
		if want := runners.DeletedMessage(deletedAt, "confirmed by its runner after it stopped its work"); tomb.GetStatus().GetMessage() != want {
			t.Fatalf("deleted runner's message = %q, want %q", tomb.GetStatus().GetMessage(), want)
		}
		if tomb.GetName() != runnerName {
			t.Fatalf("deleted runner's name = %q", tomb.GetName())
		}

		t.Run("TokensDead", func(t *testing.T) {
			_, err := runnerClient.Identity.GetAuthenticatedIdentity(ctx, connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
			wantCode(t, err, connect.CodeUnauthenticated)
			_, err = admin.Identity.ExchangeToken(ctx, connect.NewRequest(&gitpodv1.ExchangeTokenRequest{ExchangeToken: exchange}))
			wantCode(t, err, connect.CodeUnauthenticated)
		})
		t.Run("Unlisted", func(t *testing.T) {
			if slices.Contains(ids(listAll(t, admin, nil, 100)), r.GetRunnerId()) {
				t.Error("ListRunners lists the deleted runner")
			}
			for path, names := range surfaces.lists() {
				if slices.Contains(names, runnerName) {
					t.Errorf("%s lists the deleted runner", path)
				}
			}
			httpJSON(t, fmt.Sprintf("%s/runners/%d", surfaces.rest, r0.Seq), bearer(testutil.AdminToken), http.StatusNotFound, nil)
			httpJSON(t, ts.URL+"/v1/runners/"+runnerName+"/describe", "UserKey "+testutil.AdminToken, http.StatusNotFound, nil)
			httpJSON(t, ts.URL+"/api/v3/runners/"+runnerName+"/health", "UserKey "+testutil.AdminToken, http.StatusNotFound, nil)
		})
		t.Run("RefusesChanges", func(t *testing.T) {
			_, err := admin.Runners.UpdateRunner(ctx, connect.NewRequest(&gitpodv1.UpdateRunnerRequest{RunnerId: r.GetRunnerId(),
				Name: ptr(name("revived")), Spec: &gitpodv1.UpdateRunnerRequest_Spec{}}))
			wantCode(t, err, connect.CodeFailedPrecondition, "was deleted")
			_, err = admin.Runners.CreateRunnerToken(ctx, connect.NewRequest(&gitpodv1.CreateRunnerTokenRequest{RunnerId: r.GetRunnerId()}))
			wantCode(t, err, connect.CodeFailedPrecondition, "was deleted")
			for _, force := range []bool{false, true} {
				_, err = admin.Runners.DeleteRunner(ctx, connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: r.GetRunnerId(), Force: force}))
				mustOK(t, err, fmt.Sprintf("delete the deleted runner again (force=%v)", force))
			}
			again, err := get()
			mustOK(t, err, "get after the refused changes")
			diffProto(t, "deleted runner after the refused changes", again, tomb)
		})
		t.Run("NameReusable", func(t *testing.T) {
			fresh, _ := mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: runnerName, Provider: provLinux})
			if fresh.GetRunnerId() == r.GetRunnerId() {
				t.Fatal("the new runner has the deleted runner's ID")
			}
			// Lookups by name find the new runner; the old ID still reads
			// as deleted.
			var described struct {
				Name string `json:"name"`
			}
			httpJSON(t, ts.URL+"/v1/runners/"+runnerName+"/describe", "UserKey "+testutil.AdminToken, http.StatusOK, &described)
			if described.Name != runnerName {
				t.Errorf("Kubiya describe of the reused name: %+v", described)
			}
			again, err := get()
			mustOK(t, err, "get the deleted runner after its name was reused")
			diffProto(t, "deleted runner after its name was reused", again, tomb)
		})
		t.Run("PurgedAfterRetention", func(t *testing.T) {
			// The registry on a second handle of the database, its clock
			// set by hand from the deletion time the runner shows.
			svc := runners.NewService(st)
			var now time.Time
			svc.Now = func() time.Time { return now }
			retention := runners.DefaultDeletedRetention
			now = deletedAt.Add(retention)
			_, err := svc.PurgeDeleted(ctx, retention)
			mustOK(t, err, "purge at the end of the retention")
			_, err = get()
			mustOK(t, err, "get at the end of the retention")
			now = deletedAt.Add(retention + time.Microsecond)
			n, err := svc.PurgeDeleted(ctx, retention)
			mustOK(t, err, "purge after the retention")
			if n < 1 {
				t.Fatalf("purge after the retention removed %d runners", n)
			}
			_, err = get()
			wantCode(t, err, connect.CodeNotFound)
			_, err = admin.Runners.DeleteRunner(ctx, connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: r.GetRunnerId()}))
			wantCode(t, err, connect.CodeNotFound)
		})
	})
}

// waitUntil polls check until it returns "" or a generous deadline passes;
// check returns what is still wrong. It asserts that something happens, not
// how fast.
func waitUntil(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		last := check()
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s", what, last)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// httpJSON GETs url with the Authorization header auth, wants status and
// decodes the body into out unless out is nil.
func httpJSON(t *testing.T, url, auth string, status int, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	mustOK(t, err, "new request")
	req.Header.Set("Authorization", auth)
	res, err := http.DefaultClient.Do(req)
	mustOK(t, err, "GET "+url)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	mustOK(t, err, "read "+url)
	if res.StatusCode != status {
		t.Fatalf("GET %s: status %d, want %d: %s", url, res.StatusCode, status, strings.TrimSpace(string(body)))
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: decode %s: %v", url, body, err)
		}
	}
}

// runnerSurfaces reads the runner lists of the REST and Kubiya APIs.
type runnerSurfaces struct {
	t         *testing.T
	url, rest string
}

// lists returns the runner names each list shows, by path.
func (s runnerSurfaces) lists() map[string][]string {
	s.t.Helper()
	out := map[string][]string{}
	for _, path := range []string{"/runners", "/runners/available"} {
		var body struct {
			Runners []struct {
				Name string `json:"name"`
			} `json:"runners"`
		}
		httpJSON(s.t, s.rest+path, bearer(testutil.AdminToken), http.StatusOK, &body)
		out["REST "+path] = []string{}
		for _, x := range body.Runners {
			out["REST "+path] = append(out["REST "+path], x.Name)
		}
	}
	var kubiya []struct {
		Name string `json:"name"`
	}
	httpJSON(s.t, s.url+"/api/v3/runners", "UserKey "+testutil.AdminToken, http.StatusOK, &kubiya)
	out["Kubiya /api/v3/runners"] = []string{}
	for _, x := range kubiya {
		out["Kubiya /api/v3/runners"] = append(out["Kubiya /api/v3/runners"], x.Name)
	}
	return out
}
