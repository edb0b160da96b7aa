package runner

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/release"
	"github.com/runyard/runyard/internal/runner/statefile"
)

func TestInWindow(t *testing.T) {
	tests := []struct {
		h, start, end int
		want          bool
	}{
		{10, 10, 12, true},
		{11, 10, 12, true},
		{12, 10, 12, false},
		{9, 10, 12, false},
		// endHour defaults to startHour+2: 23 gives 23 to 1, across midnight.
		{23, 23, 1, true},
		{0, 23, 1, true},
		{1, 23, 1, false},
		{22, 23, 1, false},
		{22, 22, 2, true},
		{1, 22, 2, true},
		{2, 22, 2, false},
		{12, 22, 2, false},
		// The same start and end: the whole day.
		{5, 7, 7, true},
	}
	for _, tt := range tests {
		if got := InWindow(tt.h, tt.start, tt.end); got != tt.want {
			t.Errorf("InWindow(%d, %d, %d) = %v, want %v", tt.h, tt.start, tt.end, got, tt.want)
		}
	}
}

// TestVerifyDownload: an archive is installed only when the SHA256SUMS the
// desired state carries is signed by the key the runner trusts and the
// downloaded bytes match its line; a tampered download and a release
// signed by another key are refused, over a real HTTP download.
func TestVerifyDownload(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho v2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	trusted, _ := release.GenerateKey()
	other, _ := release.GenerateKey()
	target := release.HostTarget()
	rel := filepath.Join(dir, "rel")
	m, err := release.Package(rel, release.Manifest{Version: "v2.0.0"}, map[release.Target]string{target: bin}, trusted)
	if err != nil {
		t.Fatal(err)
	}
	name := m.Artifacts[0].File
	good, _ := os.ReadFile(filepath.Join(rel, name))
	sums, _ := os.ReadFile(filepath.Join(rel, release.SumsFile))
	sig, _ := os.ReadFile(filepath.Join(rel, release.SigFile))
	tampered := bytes.Clone(good)
	tampered[len(tampered)/2] ^= 0xff

	tests := []struct {
		name    string
		serve   []byte
		sig     []byte
		wantErr string
	}{
		{name: "Good", serve: good, sig: sig},
		{name: "Tampered", serve: tampered, sig: sig, wantErr: "SHA-256"},
		{name: "OtherKey", serve: good, sig: signWith(other, sums), wantErr: "does not match the release public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer tok" {
					http.Error(w, "no", http.StatusUnauthorized)
					return
				}
				w.Write(tt.serve)
			}))
			defer srv.Close()
			dst := filepath.Join(t.TempDir(), name)
			if err := fetch(context.Background(), srv.Client(), srv.URL+"/x", "tok", dst); err != nil {
				t.Fatalf("fetch: %v", err)
			}
			w := &runnerv1.RunnerUpdate{Version: "v2.0.0", Archive: name, Sha256: m.Artifacts[0].SHA256, Sums: sums, SumsSignature: tt.sig}
			err := verifyDownload(dst, w, trusted.Public().(release.PublicKey))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("verify: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("verify = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

func signWith(key release.PrivateKey, b []byte) []byte { return ed25519.Sign(key, b) }

// TestUpdateMetrics drives the updater through its steps and reads its
// series as a scrape does: every state is present with the one it is in
// at 1, the info series names the target and its channel, and the failure
// counter counts a failed update once (not again at each step) and a
// rollback seen by the binary the guard started again.
func TestUpdateMetrics(t *testing.T) {
	st, err := openState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.close)
	key, _ := release.GenerateKey()
	d := &Daemon{
		cfg: Config{Version: "v1.0.0", ReleasePublicKey: key.Public().(release.PublicKey),
			Now: func() time.Time { return time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC) }},
		log: slog.New(slog.DiscardHandler), state: st, healthChanged: make(chan struct{}, 1), reapply: make(chan struct{}, 1),
	}
	d.upd = newUpdater(d)
	reg := prometheus.NewRegistry()
	reg.MustRegister(&updateCollector{d: d})
	check := func(state, target, channel string, failures int) {
		t.Helper()
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]*dto.MetricFamily{}
		for _, f := range fams {
			got[f.GetName()] = f
		}
		states := map[string]float64{}
		for _, m := range got["runyard_runner_update_state"].GetMetric() {
			states[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
		for _, s := range updateStates {
			want := 0.0
			if s == state {
				want = 1
			}
			if v, ok := states[s]; !ok || v != want {
				t.Errorf("update_state{state=%q} = %v (present %v), want %v", s, v, ok, want)
			}
		}
		if len(states) != len(updateStates) {
			t.Errorf("update_state has %d series, want %d: %v", len(states), len(updateStates), states)
		}
		info := got["runyard_runner_update_info"].GetMetric()
		if len(info) != 1 {
			t.Fatalf("update_info has %d series, want 1", len(info))
		}
		labels := map[string]string{}
		for _, l := range info[0].GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if want := map[string]string{"version": "v1.0.0", "target_version": target, "channel": channel}; !maps.Equal(labels, want) {
			t.Errorf("update_info labels = %v, want %v", labels, want)
		}
		fail := got["runyard_runner_update_failures_total"]
		if fail.GetType() != dto.MetricType_COUNTER || len(fail.GetMetric()) != 1 || fail.GetMetric()[0].GetCounter().GetValue() != float64(failures) {
			t.Errorf("update_failures_total = %v, want a counter at %d", fail, failures)
		}
	}
	check(UpdateIdle, "", "", 0)

	// A verified release outside its window (10:00 UTC, window 13 to 15):
	// staged already, so the step goes straight to the window.
	w := &runnerv1.RunnerUpdate{Version: "v2.0.0", Channel: "stable", Archive: "a.tar.gz", Sha256: strings.Repeat("a", 64),
		HasWindow: true, StartHour: 13, EndHour: 15}
	d.upd.staged, d.upd.stagedSHA = filepath.Join(t.TempDir(), "bin"), w.GetSha256()
	d.upd.setWant(w)
	if d.upd.step(context.Background()) {
		t.Fatal("the updater restarts outside its window")
	}
	check(UpdateWaiting, "v2.0.0", "stable", 0)

	// A release this runner cannot verify fails, once.
	d.cfg.ReleasePublicKey = nil
	d.upd.setWant(&runnerv1.RunnerUpdate{Version: "v2.1.0", Channel: "latest", Sha256: strings.Repeat("b", 64)})
	for range 3 {
		d.upd.step(context.Background())
	}
	check(UpdateFailed, "v2.1.0", "latest", 1)

	// The guard rolled a new binary back and started this one again: its
	// updater starts failed, with the rollback counted.
	rec := updateRecord{State: recordRolledBack, Target: "v3.0.0", TargetSHA256: strings.Repeat("c", 64), Previous: "v1.0.0",
		Failure: "v3.0.0 exited before it reached the control plane; rolled back to v1.0.0", FailedAt: d.now()}
	if err := statefile.Write(st.path(updateRecordFile), &rec); err != nil {
		t.Fatal(err)
	}
	d.upd = newUpdater(d)
	check(UpdateFailed, "v3.0.0", "", 1)
	// The record now says failed: the next start does not count it again.
	d.upd = newUpdater(d)
	check(UpdateFailed, "v3.0.0", "", 0)
}
