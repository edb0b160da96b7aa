package runner_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/testutil"
)

// syncBuffer is a log the daemon writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunnerStream_Transports runs a runner daemon on each way its stream
// goes: a connection of its own (runnerstream) and the Connect procedure
// (a runner behind a proxy, or a control plane that keeps streams on
// HTTP/2: --runner-streams, whose auto is HTTP/2 on PostgreSQL). On each
// the runner
// connects, reports its status, renews (its phase stays ACTIVE past
// three runner timeouts), and stops with runner.ErrDeleted once deleted:
// the control plane's end of the stream reaches the daemon as what it is.
func TestRunnerStream_Transports(t *testing.T) {
	for _, backend := range testutil.Backends() {
		// --runner-streams auto keeps them on HTTP/2 on PostgreSQL, where
		// replicas may share the database behind a load balancer.
		auto := "stream=connection"
		if backend == testutil.Postgres {
			auto = "stream=connect"
		}
		for _, tc := range []struct {
			name          string
			runnerStreams string
			onConnect     bool
			want          string
		}{
			{"auto", "", false, auto},
			{"own connection", "connection", false, "stream=connection"},
			{"server keeps http2", "http2", false, "stream=connect"},
			{"runner on connect", "connection", true, "stream=connect"},
		} {
			t.Run(string(backend)+"/"+tc.name, func(t *testing.T) {
				ts := testutil.StartServerWith(t, backend, testutil.Options{RunnerTimeout: 3 * time.Second, RunnerStreams: tc.runnerStreams})
				ctx := context.Background()
				client := gitpodv1connect.NewRunnerServiceClient(http.DefaultClient, ts.URL)
				cr, err := client.CreateRunner(ctx, req(&gitpodv1.CreateRunnerRequest{
					Name: "stream-host", Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST,
				}))
				if err != nil {
					t.Fatalf("create runner: %v", err)
				}
				id := cr.Msg.GetRunner().GetRunnerId()
				var log syncBuffer
				cfg := runner.Config{Server: ts.URL, ExchangeToken: cr.Msg.GetExchangeToken(), StateDir: t.TempDir(), Name: "stream-host",
					StopGrace: 2 * time.Second, StreamOnConnect: tc.onConnect,
					Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
				dctx, cancel := context.WithCancel(ctx)
				defer cancel()
				d, err := runner.New(dctx, cfg)
				if err != nil {
					t.Fatalf("start runner daemon: %v", err)
				}
				defer d.Close()
				done := make(chan error, 1)
				go func() { done <- d.Run(dctx) }()

				get := func() *gitpodv1.Runner {
					res, err := client.GetRunner(ctx, req(&gitpodv1.GetRunnerRequest{RunnerId: id}))
					if err != nil {
						t.Fatalf("get runner: %v", err)
					}
					return res.Msg.GetRunner()
				}
				eventually(t, "the runner is ACTIVE with its status", func() string {
					r := get()
					if r.GetStatus().GetPhase() != gitpodv1.RunnerPhase_RUNNER_PHASE_ACTIVE || r.GetStatus().GetSystemDetails() == "" {
						return fmt.Sprintf("phase %v, system details %q", r.GetStatus().GetPhase(), r.GetStatus().GetSystemDetails())
					}
					return ""
				})
				// The transport is the line's last attribute: "stream=connect"
				// is also the start of "stream=connection".
				if got := strings.Count(log.String(), "connected to the control plane"); got != 1 || !strings.Contains(log.String(), tc.want+"\n") {
					t.Fatalf("runner log: %d connections, want 1 with %s:\n%s", got, tc.want, log.String())
				}
				// Renewals keep it ACTIVE past three times the runner
				// timeout (the runner renews every third of it).
				time.Sleep(9 * time.Second)
				if p := get().GetStatus().GetPhase(); p != gitpodv1.RunnerPhase_RUNNER_PHASE_ACTIVE {
					t.Fatalf("phase %v after three runner timeouts, want ACTIVE: renewals did not arrive", p)
				}

				// Deleted: the control plane ends the stream and the
				// daemon stops for good.
				if _, err := client.DeleteRunner(ctx, req(&gitpodv1.DeleteRunnerRequest{RunnerId: id})); err != nil {
					t.Fatalf("delete runner: %v", err)
				}
				select {
				case err := <-done:
					if !errors.Is(err, runner.ErrDeleted) {
						t.Fatalf("daemon stopped with %v, want runner.ErrDeleted", err)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("the daemon did not stop after its runner was deleted")
				}
				if p := get().GetStatus().GetPhase(); p != gitpodv1.RunnerPhase_RUNNER_PHASE_DELETED {
					t.Errorf("phase %v after the daemon confirmed the deletion, want DELETED", p)
				}
			})
		}
	}
}
