package main

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunner_OneIdentityOneDaemon runs two real daemons of one runner, each
// with its own state dir, the second from a fresh exchange token: the pod
// the first one started (its command appends its key to a file) runs exactly
// once; the second daemon reports it lost instead of starting it again. The
// first daemon's stream is refused and it exits, and its access token is
// refused on the API.
func TestRunner_OneIdentityOneDaemon(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			cfg := serverConfig{DatabaseURL: b.databaseURL(t), Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}}
			s := startServer(t, cfg)
			starts := filepath.Join(t.TempDir(), "starts")
			agent := fmt.Sprintf(`{"id":"append-agent","name":"Append","command":["sh","-c","echo \"$RUNYARD_POD_KEY\" >> %s; while :; do sleep 1; done"]}`, starts)
			restCall(t, s, http.MethodPost, "/agents", agent, http.StatusCreated, nil)
			id, exchange := registerRunner(t, s, "fenced-host")

			stateA := filepath.Join(t.TempDir(), "a")
			first := startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", stateA, "--stop-grace", "2s")
			var created podJSON
			restCall(t, s, http.MethodPost, "/pods", `{"agent_type_id":"append-agent","initial_prompt":"hi"}`, http.StatusCreated, &created)
			key := created.Pod.Key
			podOf := func() podJSON {
				var p podJSON
				restCall(t, s, http.MethodGet, "/pods/"+key, "", http.StatusOK, &p)
				return p
			}
			eventually(t, "the first daemon runs the pod", func() bool { return podOf().Pod.Status == "running" })
			var creds struct {
				AccessToken string `json:"accessToken"`
			}
			b, err := os.ReadFile(filepath.Join(stateA, "credentials.json"))
			if err != nil || json.Unmarshal(b, &creds) != nil || creds.AccessToken == "" {
				t.Fatalf("first daemon's credentials: %v\n%s", err, b)
			}

			fresh := strings.TrimSpace(s.mustRun(t, adminToken, "runners", "token", id))
			second := startRunner(t, "--server", s.URL, "--exchange-token", fresh, "--state-dir", filepath.Join(t.TempDir(), "b"), "--stop-grace", "2s")

			if code := first.waitExit(t); code == 0 {
				t.Fatalf("the first daemon exited 0 after it was replaced; stderr:\n%s", first.Stderr)
			}
			requireOneLine(t, "first daemon's last line", lastLine(first.Stderr.String()), "the control plane refused this runner", "another daemon registered with this runner's identity")
			if strings.Contains(first.Stderr.String(), "reconnecting") {
				t.Fatalf("the replaced daemon tried to reconnect:\n%s", first.Stderr)
			}
			if code := whoamiStatus(t, s, creds.AccessToken); code != http.StatusUnauthorized {
				t.Fatalf("the first daemon's access token answers HTTP %d on the API, want 401", code)
			}

			eventually(t, "the second daemon reports the pod lost", func() bool {
				p := podOf()
				return p.Pod.Status == "failed" && strings.Contains(p.Pod.Reason, "lost")
			})
			// The second daemon is the live one, and stays.
			eventually(t, "the runner is active with the second daemon", func() bool {
				got, _ := phaseOf(t, s, id)
				return got.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
			})
			select {
			case <-second.done:
				t.Fatalf("the second daemon exited; stderr:\n%s", second.Stderr)
			case <-time.After(500 * time.Millisecond): // a moment for a wrong start to show in the file
			}
			b, err = os.ReadFile(starts)
			if err != nil {
				t.Fatalf("read starts: %v", err)
			}
			if got := strings.Count(string(b), key); got != 1 {
				t.Fatalf("the pod's command ran %d times, want exactly once", got)
			}
		})
	}
}

// whoamiStatus calls GetAuthenticatedIdentity with token and returns the
// HTTP status.
func whoamiStatus(t *testing.T, s *serverProc, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/gitpod.v1.IdentityService/GetAuthenticatedIdentity", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("GetAuthenticatedIdentity: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestRunner_InterruptedExchange retries an exchange whose answer was lost:
// the control plane committed the redemption, the daemon never saw the
// access token. A daemon with the same key pair (state dir) starts with the
// same exchange token and connects; one with another key pair is refused.
func TestRunner_InterruptedExchange(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := startServer(t, serverConfig{DatabaseURL: b.databaseURL(t), Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
			id, exchange := registerRunner(t, s, "retry-host")

			// The state dir of the daemon whose exchange was interrupted,
			// with its key pair.
			state := filepath.Join(t.TempDir(), "state")
			if err := os.MkdirAll(state, 0o700); err != nil {
				t.Fatal(err)
			}
			key, err := ecdh.X25519().GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(state, "runner.key"), []byte(base64.StdEncoding.EncodeToString(key.Bytes())+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			req, err := http.NewRequest(http.MethodPost, s.URL+"/gitpod.v1.IdentityService/ExchangeToken", strings.NewReader(`{"exchangeToken":"`+exchange+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Runyard-Public-Key", base64.StdEncoding.EncodeToString(key.PublicKey().Bytes()))
			res, err := s.client.Do(req)
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			res.Body.Close() // the answer that was lost
			if res.StatusCode != http.StatusOK {
				t.Fatalf("first exchange: HTTP %d", res.StatusCode)
			}

			other := startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "other"))
			if code := other.waitExit(t); code == 0 {
				t.Fatal("a daemon with another key pair redeemed a used exchange token")
			}
			requireOneLine(t, "other daemon's last line", lastLine(other.Stderr.String()), "already been used")

			r := startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", state)
			eventually(t, "the retrying daemon is connected and the runner ACTIVE", func() bool {
				got, _ := phaseOf(t, s, id)
				return strings.Contains(r.Stderr.String(), "connected to the control plane") && got.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
			})
		})
	}
}
