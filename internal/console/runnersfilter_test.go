package console_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"testing"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/testutil"
)

var runnerRowRe = regexp.MustCompile(`<tr data-runner="([^"]+)"`)

// TestConsole_RunnersDrainingFilter: the runners page's "draining" filter
// shows the runners being drained, found by the store wherever they are in
// the fleet, and "active" a full page of the others with a next page.
func TestConsole_RunnersDrainingFilter(t *testing.T) {
	for _, b := range testutil.Backends() {
		t.Run(string(b), func(t *testing.T) {
			e := newEnv(t, b)
			var ids []string
			for i := range 30 {
				id, _ := e.createRunner(t, "fleet-"+string(rune('a'+i/10))+string(rune('0'+i%10)))
				ids = append(ids, id)
			}
			inactive := gitpodv1.RunnerPhase_RUNNER_PHASE_INACTIVE
			for _, i := range []int{1, 28} {
				if _, err := e.runners.UpdateRunner(context.Background(), admin(&gitpodv1.UpdateRunnerRequest{
					RunnerId: ids[i], Spec: &gitpodv1.UpdateRunnerRequest_Spec{DesiredPhase: &inactive}})); err != nil {
					t.Fatalf("drain: %v", err)
				}
			}
			rows := func(query string) ([]string, string) {
				t.Helper()
				res, body := e.request(t, http.MethodGet, "/runners?"+query, testutil.AdminToken, nil, nil)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("GET /runners?%s: %d", query, res.StatusCode)
				}
				var names []string
				for _, m := range runnerRowRe.FindAllStringSubmatch(body, -1) {
					names = append(names, m[1])
				}
				return names, body
			}
			got, body := rows("desired=RUNNER_PHASE_INACTIVE")
			if !slices.Equal(got, []string{"fleet-a1", "fleet-c8"}) {
				t.Fatalf("draining runners: %v", got)
			}
			if regexp.MustCompile(`href="[^"]*token=`).MatchString(body) {
				t.Errorf("the draining filter's only page links a next page")
			}
			got, body = rows("desired=RUNNER_PHASE_ACTIVE")
			if len(got) != 25 || slices.Contains(got, "fleet-a1") || !regexp.MustCompile(`href="[^"]*token=`).MatchString(body) {
				t.Fatalf("active runners' first page: %d rows %v, want 25 without the drained and a next page", len(got), got)
			}
			if got, _ := rows("desired=RUNNER_PHASE_INACTIVE&name=C8"); !slices.Equal(got, []string{"fleet-c8"}) {
				t.Errorf("draining runners named c8: %v", got)
			}
			if res, _ := e.request(t, http.MethodGet, "/runners?desired=NOPE", testutil.AdminToken, nil, nil); res.StatusCode != http.StatusBadRequest {
				t.Errorf("an unknown desired phase: %d, want 400", res.StatusCode)
			}
		})
	}
}
