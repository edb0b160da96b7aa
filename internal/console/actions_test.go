package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/testutil"
)

// TestConsole_RunnerActions posts the runner page's forms as the island
// does (a bearer key here; the browser test covers the session): each goes
// through the runners service and answers with the next page.
func TestConsole_RunnerActions(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			e := newEnv(t, backend)
			get := func(id string) (*gitpodv1.Runner, error) {
				res, err := e.runners.GetRunner(context.Background(), admin(&gitpodv1.GetRunnerRequest{RunnerId: id}))
				return res.Msg.GetRunner(), err
			}
			for _, tc := range []struct {
				name, action, form string
				wantNext           string
				check              func(t *testing.T, r *gitpodv1.Runner, err error)
			}{
				{"drain", "drain", "", "/runners/{id}", func(t *testing.T, r *gitpodv1.Runner, err error) {
					if err != nil || r.GetSpec().GetDesiredPhase() != gitpodv1.RunnerPhase_RUNNER_PHASE_INACTIVE {
						t.Errorf("after drain: %v %v", r.GetSpec().GetDesiredPhase(), err)
					}
				}},
				{"resume", "resume", "", "/runners/{id}", func(t *testing.T, r *gitpodv1.Runner, err error) {
					if err != nil || r.GetSpec().GetDesiredPhase() != gitpodv1.RunnerPhase_RUNNER_PHASE_ACTIVE {
						t.Errorf("after resume: %v %v", r.GetSpec().GetDesiredPhase(), err)
					}
				}},
				{"delete", "delete", "", "/runners", func(t *testing.T, r *gitpodv1.Runner, err error) {
					// Never connected: deleted at once (a tombstone).
					if err != nil || r.GetStatus().GetPhase() != gitpodv1.RunnerPhase_RUNNER_PHASE_DELETED {
						t.Errorf("after delete: %v %v", r.GetStatus().GetPhase(), err)
					}
				}},
				{"force delete", "delete", "force=true", "/runners", func(t *testing.T, r *gitpodv1.Runner, err error) {
					if err != nil || r.GetStatus().GetPhase() != gitpodv1.RunnerPhase_RUNNER_PHASE_DELETED {
						t.Errorf("after force delete: %v %v", r.GetStatus().GetPhase(), err)
					}
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					id, _ := e.createRunner(t, "act-"+strings.ReplaceAll(tc.name, " ", "-"))
					if tc.name == "resume" {
						e.request(t, http.MethodPost, "/runners/"+id+"/drain", testutil.AdminToken, strings.NewReader(""), nil)
					}
					res, body := e.request(t, http.MethodPost, "/runners/"+id+"/"+tc.action, testutil.AdminToken, strings.NewReader(tc.form), nil)
					if want := strings.ReplaceAll(tc.wantNext, "{id}", id); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != want {
						t.Fatalf("POST %s: %d to %q, want 303 to %s: %.300s", tc.action, res.StatusCode, res.Header.Get("Location"), want, body)
					}
					r, err := get(id)
					tc.check(t, r, err)
				})
			}
			// A runner that does not exist: the page says so and what to do.
			res, body := e.request(t, http.MethodPost, "/runners/00000000-0000-4000-8000-000000000000/drain", testutil.AdminToken, strings.NewReader(""), nil)
			if res.StatusCode != http.StatusNotFound || !strings.Contains(body, "Go back to the list") {
				t.Errorf("drain of a missing runner: %d %.500s", res.StatusCode, body)
			}
		})
	}
}
