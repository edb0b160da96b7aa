package envs_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/testutil"
)

// bigLogLine is what the big task repeats; the log's bytes are checked
// exactly, so a chunk lost, doubled or reordered on the way shows.
const bigLogLine = "runyard log transport 0123456789abcdefghijklmnopqrstuvwxyz"

const bigLogBytes = 3_000_000

var logTransportFile = fmt.Sprintf(`tasks:
  big:
    name: Big
    command: sleep 1; yes '%s' | head -c %d; sleep 0.3; echo the-end-of-the-big-log
  ticker:
    name: Ticker
    command: for i in $(seq 1 600); do echo "tick $i"; sleep 0.1; done
`, bigLogLine, bigLogBytes)

// TestEnvironments_LogTransports follows and reads logs on both ways a
// runner sends them: a connection of its own (rawconn, the default) and a
// Terminal stream (the fallback). A followed log arrives whole and in
// order, from before the writer started to the run's end, and equals the
// log read afterwards; runyard_log_connections_total tells which way it
// went; a follower that leaves closes the runner's connection or stream.
func TestEnvironments_LogTransports(t *testing.T) {
	want := strings.Repeat(bigLogLine+"\n", bigLogBytes/len(bigLogLine)+1)[:bigLogBytes] + "the-end-of-the-big-log\n"
	for _, backend := range testutil.Backends() {
		for _, tc := range []struct {
			name      string
			onStreams bool
		}{
			{"own connection", false},
			{"terminal stream", true},
		} {
			t.Run(string(backend)+"/"+tc.name, func(t *testing.T) {
				c := startServerWith(t, backend, testutil.Options{LogsOnStreams: tc.onStreams})
				class, _, _, _ := c.addRunner(t, "log-host", t.TempDir(), testutil.StartRunner)
				env := c.createEnv(t, class, gitRepo(t, map[string]string{".runyard/automations.yaml": logTransportFile}))
				c.waitEnvPhase(t, env, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)

				x := c.startTask(t, env, "big")
				url := c.logURL(t, x)
				followed := readLog(t, url, true)
				if !strings.Contains(followed, want) {
					t.Errorf("followed log: %d bytes, want the %d the task wrote, whole and in order; it ends %q",
						len(followed), len(want), followed[max(0, len(followed)-200):])
				}
				if got := readLog(t, url, false); got != followed {
					t.Errorf("the log read after its run (%d bytes) differs from the one followed (%d bytes)", len(got), len(followed))
				}
				conns := c.metric(t, "runyard_log_connections_total")
				if tc.onStreams && conns != 0 {
					t.Errorf("runyard_log_connections_total = %v with logs on Terminal streams, want 0", conns)
				}
				if !tc.onStreams && conns < 2 {
					t.Errorf("runyard_log_connections_total = %v after two reads of a log, want them on connections of their own", conns)
				}

				// A follower that leaves mid-run ends the runner's side.
				tick := c.startTask(t, env, "ticker")
				res := getLog(t, c.logURL(t, tick)+"?follow=1")
				line, err := bufio.NewReader(res.Body).ReadString('\n')
				if err != nil || !strings.HasPrefix(line, "=== step ") {
					t.Fatalf("followed ticker: first line %q (%v)", line, err)
				}
				if open := c.metric(t, "runyard_terminal_streams"); open != 1 {
					t.Errorf("runyard_terminal_streams = %v while a log is followed, want 1", open)
				}
				res.Body.Close()
				eventually(t, "the runner's log closes after its follower left", func() string {
					if open := c.metric(t, "runyard_terminal_streams"); open != 0 {
						return fmt.Sprintf("runyard_terminal_streams = %v", open)
					}
					return ""
				})
			})
		}
	}
}

// logURL waits until execution id has a log URL and returns it.
func (c *client) logURL(t *testing.T, id string) string {
	t.Helper()
	var url string
	eventually(t, "the execution has a log", func() string {
		x, err := c.execution(id)
		if err != nil {
			return err.Error()
		}
		if url = x.GetStatus().GetLogUrl(); url == "" || len(x.GetStatus().GetSteps()) == 0 {
			return "no log yet"
		}
		return ""
	})
	return url
}

// getLog sends GET url with the admin token and returns the response,
// which must be 200.
func getLog(t *testing.T, url string) *http.Response {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+testutil.AdminToken)
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
	}
	return res
}

// metric returns the value of an unlabelled series of the control plane's
// /metrics.
func (c *client) metric(t *testing.T, name string) float64 {
	t.Helper()
	res, err := http.Get(c.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, l)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// execution reads task execution id.
func (c *client) execution(id string) (*gitpodv1.TaskExecution, error) {
	res, err := c.autos.GetTaskExecution(context.Background(), req(&gitpodv1.GetTaskExecutionRequest{Id: id}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetTaskExecution(), nil
}
