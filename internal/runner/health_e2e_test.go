package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/testutil"
)

// These tests run a real control plane and a real runner daemon over
// loopback, and break the runner's parts for real: tests run as root, so
// permission bits stop nothing, but a directory replaced by a file does.

func req[T any](msg *T) *connect.Request[T] {
	r := connect.NewRequest(msg)
	r.Header().Set("Authorization", "Bearer "+testutil.AdminToken)
	return r
}

// eventually polls check until it returns "", failing with its last answer
// after a generous deadline: it asserts that something happens, not how
// fast.
func eventually(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		if last = check(); last == "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting until %s; last: %s", what, last)
}

// kubiyaHealth is GET /api/v3/runners/{name}/health, as seed 004 shapes it.
type kubiyaHealth struct {
	Health string `json:"health"`
	Status string `json:"status"`
	Checks []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	} `json:"checks"`
}

func getKubiyaHealth(t *testing.T, base, name string) (kubiyaHealth, error) {
	t.Helper()
	var h kubiyaHealth
	r, err := http.NewRequest(http.MethodGet, base+"/api/v3/runners/"+name+"/health", nil)
	if err != nil {
		return h, err
	}
	r.Header.Set("Authorization", "UserKey "+testutil.AdminToken)
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		return h, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return h, fmt.Errorf("status %d", res.StatusCode)
	}
	return h, json.NewDecoder(res.Body).Decode(&h)
}

func (h kubiyaHealth) check(name string) string {
	for _, c := range h.Checks {
		if c.Name == name {
			return c.Status
		}
	}
	return "(absent)"
}

// daemonHealthz is the body of the runner's own /healthz.
type daemonHealthz struct {
	Code       int
	Components []struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"components"`
}

func getHealthz(addr string) (daemonHealthz, error) {
	var h daemonHealthz
	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return h, err
	}
	defer res.Body.Close()
	h.Code = res.StatusCode
	return h, json.NewDecoder(res.Body).Decode(&h)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// replaceWithFile moves dir aside and puts a regular file in its place, so
// that writing under dir fails even for root; the returned function puts
// the directory back. It also runs when the test ends, so that a failed
// step does not break the next ones.
func replaceWithFile(t *testing.T, dir string) (repair func()) {
	t.Helper()
	aside := dir + ".aside"
	if err := os.Rename(dir, aside); err != nil {
		t.Fatalf("move %s aside: %v", dir, err)
	}
	if err := os.WriteFile(dir, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatalf("put a file at %s: %v", dir, err)
	}
	var once sync.Once
	repair = func() {
		once.Do(func() {
			if err := os.Remove(dir); err != nil {
				t.Errorf("remove the file at %s: %v", dir, err)
				return
			}
			if err := os.Rename(aside, dir); err != nil {
				t.Errorf("put %s back: %v", dir, err)
			}
		})
	}
	t.Cleanup(repair)
	return repair
}

// TestComponentHealth breaks each component of a connected runner in turn
// (its pod manager's, its automations executor's and its own state
// directory) and checks that the control plane shows the runner DEGRADED
// with the component and the reason, through the Connect API and the Kubiya
// health endpoint, and ACTIVE again once the fault is repaired, without any
// restart.
func TestComponentHealth(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			testComponentHealth(t, backend)
		})
	}
}

func testComponentHealth(t *testing.T, backend testutil.Backend) {
	ts := testutil.StartServer(t, backend)
	ctx := context.Background()
	client := gitpodv1connect.NewRunnerServiceClient(http.DefaultClient, ts.URL)
	name := "health-host"
	cr, err := client.CreateRunner(ctx, req(&gitpodv1.CreateRunnerRequest{
		Name: name, Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST,
	}))
	if err != nil {
		t.Fatalf("create runner: %v", err)
	}
	id := cr.Msg.GetRunner().GetRunnerId()
	state := filepath.Join(t.TempDir(), "state")
	healthAddr := freeAddr(t)
	testutil.StartRunner(t, runner.Config{
		Server: ts.URL, ExchangeToken: cr.Msg.GetExchangeToken(), StateDir: state, Name: name,
		HealthAddr: healthAddr, HealthInterval: 50 * time.Millisecond, StopGrace: 2 * time.Second,
	})

	// phase reads the runner's phase and message through the Connect API.
	phase := func(t *testing.T) (gitpodv1.RunnerPhase, string) {
		res, err := client.GetRunner(ctx, req(&gitpodv1.GetRunnerRequest{RunnerId: id}))
		if err != nil {
			t.Fatalf("get runner: %v", err)
		}
		st := res.Msg.GetRunner().GetStatus()
		return st.GetPhase(), st.GetMessage()
	}
	waitActive := func(t *testing.T, what string) {
		t.Helper()
		eventually(t, what, func() string {
			p, msg := phase(t)
			if p != gitpodv1.RunnerPhase_RUNNER_PHASE_ACTIVE || msg != "" {
				return fmt.Sprintf("%s %q", p, msg)
			}
			h, err := getKubiyaHealth(t, ts.URL, name)
			if err != nil {
				return "kubiya health: " + err.Error()
			}
			if h.Health != "ok" || h.Status != "healthy" || h.check("agent-manager") != "healthy" || h.check("tool-manager") != "healthy" {
				return fmt.Sprintf("kubiya health %+v", h)
			}
			return ""
		})
	}
	// waitDegraded waits until the runner is DEGRADED by component with a
	// message holding each of want, and returns the message.
	waitDegraded := func(t *testing.T, what, component string, want ...string) string {
		t.Helper()
		var msg string
		eventually(t, what, func() string {
			var p gitpodv1.RunnerPhase
			p, msg = phase(t)
			if p != gitpodv1.RunnerPhase_RUNNER_PHASE_DEGRADED {
				return fmt.Sprintf("%s %q", p, msg)
			}
			if !strings.Contains(msg, "component "+component+" is unhealthy") {
				return "message " + msg
			}
			for _, w := range want {
				if !strings.Contains(msg, w) {
					return "message " + msg
				}
			}
			return ""
		})
		return msg
	}

	waitActive(t, "the runner is ACTIVE with healthy components")

	t.Run("PodManager", func(t *testing.T) {
		repair := replaceWithFile(t, filepath.Join(state, "pods"))
		msg := waitDegraded(t, "the runner is DEGRADED by its pod manager", "agent-manager",
			filepath.Join(state, "pods"), "not a directory")
		h, err := getKubiyaHealth(t, ts.URL, name)
		if err != nil {
			t.Fatalf("kubiya health: %v", err)
		}
		if h.Health != "error" || h.Status != "unhealthy" || h.check("agent-manager") != "unhealthy" || h.check("tool-manager") != "healthy" {
			t.Fatalf("kubiya health while the pod manager is broken: %+v", h)
		}
		// The daemon's own /healthz shows the reason but stays 200: a
		// restart would not repair a directory.
		hz, err := getHealthz(healthAddr)
		if err != nil {
			t.Fatalf("runner /healthz: %v", err)
		}
		found := false
		for _, c := range hz.Components {
			if c.Name == "agent-manager" && c.Message != "" && strings.Contains(msg, c.Message) {
				found = true
			}
		}
		if hz.Code != http.StatusOK || !found {
			t.Fatalf("runner /healthz while the pod manager is broken: %+v (control plane: %q)", hz, msg)
		}
		repair()
		waitActive(t, "the runner is ACTIVE again after the pod state dir came back")
	})

	t.Run("AutomationsExecutor", func(t *testing.T) {
		repair := replaceWithFile(t, filepath.Join(state, "automations", "logs"))
		waitDegraded(t, "the runner is DEGRADED by its automations executor", "tool-manager",
			filepath.Join(state, "automations", "logs"), "not a directory")
		h, err := getKubiyaHealth(t, ts.URL, name)
		if err != nil {
			t.Fatalf("kubiya health: %v", err)
		}
		if h.Status != "unhealthy" || h.check("tool-manager") != "unhealthy" || h.check("agent-manager") != "healthy" {
			t.Fatalf("kubiya health while the executor is broken: %+v", h)
		}
		repair()
		waitActive(t, "the runner is ACTIVE again after the executor's logs dir came back")
	})

	t.Run("Runner", func(t *testing.T) {
		// The whole state directory: every component fails, and the
		// message is the first one's, the runner itself.
		repair := replaceWithFile(t, state)
		waitDegraded(t, "the runner is DEGRADED by its own state dir", "runner", "state dir", state, "not a directory")
		repair()
		waitActive(t, "the runner is ACTIVE again after its state dir came back")
	})
}
