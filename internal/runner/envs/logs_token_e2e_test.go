package envs_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/testutil"
)

const logsTokenFile = `services:
  web:
    name: Web
    triggeredBy: [postEnvironmentStart]
    commands:
      start: echo "web-is-up"; exec sleep 1000
tasks:
  hello:
    name: Hello
    command: echo "hello-from-the-task"
`

// readLogWith reads a log URL with an Authorization header and returns the
// status and body.
func readLogWith(t *testing.T, url, authorization string) (int, string) {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", authorization)
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("read log %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestEnvironments_LogsToken reads real logs, as the vendor SDK's
// streamLogs does: CreateEnvironmentLogsToken, then GET status.logUrl with
// that token. It streams an execution's log to its end by default, reads a
// running service's log with ?follow=0, and reads no other environment's.
func TestEnvironments_LogsToken(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			c, class, _, _ := setup(t, backend, t.TempDir())
			ctx := context.Background()
			repo := gitRepo(t, map[string]string{".runyard/automations.yaml": logsTokenFile})
			mine, other := c.createEnv(t, class, repo), c.createEnv(t, class, repo)
			c.waitEnvPhase(t, mine, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
			c.waitEnvPhase(t, other, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)

			tok := must[gitpodv1.CreateEnvironmentLogsTokenResponse](t, "create logs token")(c.envs.CreateEnvironmentLogsToken(ctx,
				req(&gitpodv1.CreateEnvironmentLogsTokenRequest{EnvironmentId: mine}))).GetAccessToken()
			auth := "Bearer " + tok

			x := c.waitExecution(t, c.startTask(t, mine, "hello"))
			if status, body := readLogWith(t, x.GetStatus().GetLogUrl(), auth); status != http.StatusOK || !strings.Contains(body, "hello-from-the-task") {
				t.Errorf("execution log with the logs token: %d %q", status, body)
			}
			web := c.waitService(t, mine, "web", gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING)
			eventually(t, "the service log holds its output", func() string {
				status, body := readLogWith(t, web.GetStatus().GetLogUrl()+"?follow=0", auth)
				if status != http.StatusOK || !strings.Contains(body, "web-is-up") {
					return body
				}
				return ""
			})

			xo := c.waitExecution(t, c.startTask(t, other, "hello"))
			webOther := c.waitService(t, other, "web", gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING)
			for _, url := range []string{xo.GetStatus().GetLogUrl(), webOther.GetStatus().GetLogUrl() + "?follow=0"} {
				if status, body := readLogWith(t, url, auth); status != http.StatusForbidden {
					t.Errorf("another environment's log %s with the logs token: %d %q, want 403", url, status, body)
				}
			}
			// The admin key reads both, as before.
			if got := readLog(t, xo.GetStatus().GetLogUrl(), false); !strings.Contains(got, "hello-from-the-task") {
				t.Errorf("the other execution's log with the admin key: %q", got)
			}
		})
	}
}
