package runner

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
)

// serveRunnerFile opens a Terminal stream that carries one of the runner's
// own files, as the control plane asked in open: its recent log, or a
// support bundle made now.
func (d *Daemon) serveRunnerFile(ctx context.Context, open *runnerv1.OpenTerminal) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream := d.control.Terminal(ctx)
	stream.RequestHeader().Set("Authorization", "Bearer "+d.state.AccessToken)
	defer stream.CloseRequest()
	received := make(chan struct{})
	go func() {
		defer close(received)
		defer cancel()
		for {
			if _, err := stream.Receive(); err != nil {
				return
			}
		}
	}()
	hello := &runnerv1.TerminalHello{SessionId: open.GetSessionId()}
	var body []byte
	switch open.GetRunnerFile() {
	case runnerv1.RunnerFile_RUNNER_FILE_LOG:
		body = d.ownLog.Snapshot()
	case runnerv1.RunnerFile_RUNNER_FILE_SUPPORT_BUNDLE:
		var err error
		if body, err = d.supportBundle(); err != nil {
			hello.Error = "make the support bundle: " + err.Error()
		}
	default:
		hello.Error = fmt.Sprintf("this runner does not know file %v", open.GetRunnerFile())
	}
	err := stream.Send(&runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_Hello{Hello: hello}})
	w := &logWriter{started: true, send: func(b []byte) error {
		return stream.Send(&runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_Output{Output: b}})
	}}
	if err == nil && hello.Error == "" {
		if _, err = w.Write(body); err == nil {
			err = stream.Send(&runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_End{End: &runnerv1.TerminalEnd{Reason: "end of file"}}})
		}
	}
	if err != nil && ctx.Err() == nil {
		d.log.Warn("send runner file", "file", open.GetRunnerFile().String(), "err", err)
	}
	_ = stream.CloseRequest()
	select {
	case <-received:
	case <-time.After(terminalLinger):
	}
}

// maxListing bounds the state-dir listing of a support bundle.
const maxListing = 5000

// supportBundle is a tar.gz of what helps to tell what a runner is doing:
// version, configuration without secrets (no token, no metrics password),
// a goroutine dump, the recent log, component health, the metrics, and a
// listing (names, sizes, modes; no contents) of the state dir.
func (d *Daemon) supportBundle() ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	now := time.Now()
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	asJSON := func(v any) []byte {
		b, _ := json.MarshalIndent(v, "", "  ")
		return append(b, '\n')
	}
	runnerID, _ := d.runnerID.Load().(string)
	version := map[string]any{
		"version": d.cfg.Version, "gitSha": d.gitSHA, "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
		"runnerId": runnerID, "started": d.started.UTC().Format(time.RFC3339), "madeAt": now.UTC().Format(time.RFC3339),
	}
	config := map[string]any{
		"server": d.state.Server, "stateDir": d.cfg.StateDir, "name": d.cfg.Name, "labels": d.cfg.Labels,
		"maxPods": d.cfg.MaxPods, "region": d.cfg.Region, "stopGrace": d.stopGrace().String(),
		"healthAddr": d.cfg.HealthAddr, "logLevel": d.cfg.Level.Level().String(), "draining": d.draining,
	}
	if t := d.metricsTarget.Load(); t != nil {
		// The password stays out: whether there is one is all that helps.
		config["metrics"] = map[string]any{"managed": t.managed, "url": t.shown, "username": t.username, "passwordSet": t.password != ""}
	}
	health := map[string]any{"connected": d.health.connected.Load(), "sessions": d.health.sessions.Load(),
		"latency": time.Duration(d.latency.Load()).String()}
	if c := d.health.components.Load(); c != nil {
		health["components"] = *c
	}
	var goroutines bytes.Buffer
	if p := pprof.Lookup("goroutine"); p != nil {
		_ = p.WriteTo(&goroutines, 2)
	}
	var metrics bytes.Buffer
	if families, err := d.metrics.Gather(); err == nil {
		enc := expfmt.NewEncoder(&metrics, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, f := range families {
			_ = enc.Encode(f)
		}
	}
	for _, f := range []struct {
		name string
		body []byte
	}{
		{"version.json", asJSON(version)},
		{"config.json", asJSON(config)},
		{"health.json", asJSON(health)},
		{"goroutines.txt", goroutines.Bytes()},
		{"runner.log", d.ownLog.Snapshot()},
		{"metrics.txt", metrics.Bytes()},
		{"state-dir.txt", listDir(d.cfg.StateDir)},
	} {
		if err := add(f.name, f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// listDir lists dir's tree: mode, size, modification time and path of each
// entry, at most maxListing of them.
func listDir(dir string) []byte {
	var b strings.Builder
	n := 0
	_ = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(&b, "?          %s: %v\n", path, err)
			return nil
		}
		if n++; n > maxListing {
			fmt.Fprintf(&b, "... more than %d entries; listing cut\n", maxListing)
			return filepath.SkipAll
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(&b, "%s %12d %s %s\n", info.Mode(), info.Size(), info.ModTime().UTC().Format(time.RFC3339), rel)
		return nil
	})
	return []byte(b.String())
}
