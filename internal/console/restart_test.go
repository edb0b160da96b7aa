package console_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/server"
	"github.com/runyard/runyard/internal/testutil"
)

// startAt runs a control plane on addr with data in dir (and dbURL, for
// PostgreSQL) until stop.
func startAt(t *testing.T, addr, dir, dbURL string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.Open(ctx, server.Config{Listen: addr, DataDir: dir, DatabaseURL: dbURL, BootstrapToken: testutil.AdminToken,
		ShutdownTimeout: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatalf("start control plane on %s: %v", addr, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("control plane: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestConsole_LiveAfterRestart stops the control plane under an open page
// and starts it again on the same address: the page says it is
// reconnecting, then (its session kept in the database) shows a change
// made after the restart, without a reload.
func TestConsole_LiveAfterRestart(t *testing.T) {
	eachDatabase(t, func(t *testing.T, backend testutil.Backend) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		dir, dbURL := t.TempDir(), ""
		if backend == testutil.Postgres {
			dbURL = testutil.PostgresURL(t)
		}
		stop := startAt(t, addr, dir, dbURL)
		base := "http://" + addr
		b := newBrowser(t, base, "admin", nil)
		b.signInKey(testutil.AdminToken)
		b.open("/runners")
		b.waitJS("the page is live", `(document.getElementById("live-status")||{}).dataset?.state === "live"`)
		eval[bool](b, `window.__sameDocument = true`)

		stop()
		b.waitJS("the page says it reconnects", `document.getElementById("live-status").dataset.state === "reconnecting"`)
		startAt(t, addr, dir, dbURL)
		b.waitJS("the page is live again", `document.getElementById("live-status").dataset.state === "live"`)

		runners := gitpodv1connect.NewRunnerServiceClient(http.DefaultClient, base)
		if _, err := runners.CreateRunner(context.Background(), admin(&gitpodv1.CreateRunnerRequest{
			Name: "after-restart", Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST})); err != nil {
			t.Fatalf("create runner: %v", err)
		}
		b.waitJS("the new runner shows", `!!document.querySelector('tr[data-runner="after-restart"]')`)
		if !eval[bool](b, `window.__sameDocument === true`) {
			t.Fatal("the page reloaded")
		}
	})
}
