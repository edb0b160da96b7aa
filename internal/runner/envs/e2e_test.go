package envs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/testutil"
)

// These tests run a real control plane (SQLite, and PostgreSQL when
// RUNYARD_TEST_POSTGRES_URL is set) and a real runner daemon over loopback
// sockets; services and tasks are real processes.

type client struct {
	envs    gitpodv1connect.EnvironmentServiceClient
	autos   gitpodv1connect.EnvironmentAutomationServiceClient
	runners gitpodv1connect.RunnerServiceClient
	secrets gitpodv1connect.SecretServiceClient
	url     string
	// logger is the server's, also given to the runners; nil discards.
	logger *slog.Logger
}

func req[T any](msg *T) *connect.Request[T] {
	r := connect.NewRequest(msg)
	r.Header().Set("Authorization", "Bearer "+testutil.AdminToken)
	return r
}

func must[T any](t *testing.T, what string) func(*connect.Response[T], error) *T {
	return func(res *connect.Response[T], err error) *T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return res.Msg
	}
}

// setup starts a control plane and a runner and returns a client, the
// runner's default environment class, the runner's configuration for a
// restart and a function that stops the runner.
//
// With logTo, the server and the runner log everything (debug level) there.
func setup(t *testing.T, backend testutil.Backend, stateDir string, logTo ...io.Writer) (*client, string, runner.Config, func()) {
	t.Helper()
	c := startServer(t, backend, logTo...)
	class, _, cfg, stop := c.addRunner(t, "env-host", stateDir, testutil.StartRunner)
	return c, class, cfg, stop
}

// startServer starts a control plane; with logTo it logs everything there.
func startServer(t *testing.T, backend testutil.Backend, logTo ...io.Writer) *client {
	t.Helper()
	var logger *slog.Logger
	if len(logTo) > 0 {
		logger = slog.New(slog.NewTextHandler(io.MultiWriter(logTo...), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return startServerWith(t, backend, testutil.Options{Logger: logger})
}

// startServerWith starts a control plane with opts.
func startServerWith(t *testing.T, backend testutil.Backend, opts testutil.Options) *client {
	t.Helper()
	logger := opts.Logger
	ts := testutil.StartServerWith(t, backend, opts)
	return &client{
		envs:    gitpodv1connect.NewEnvironmentServiceClient(http.DefaultClient, ts.URL),
		autos:   gitpodv1connect.NewEnvironmentAutomationServiceClient(http.DefaultClient, ts.URL),
		runners: gitpodv1connect.NewRunnerServiceClient(http.DefaultClient, ts.URL),
		secrets: gitpodv1connect.NewSecretServiceClient(http.DefaultClient, ts.URL),
		url:     ts.URL,
		logger:  logger,
	}
}

// addRunner creates a runner named name, starts its daemon with start and
// waits until it is ACTIVE. It returns the runner's default environment
// class, its ID, its configuration for a restart and start's stop.
func (c *client) addRunner(t *testing.T, name, stateDir string, start func(testing.TB, runner.Config) func()) (string, string, runner.Config, func()) {
	t.Helper()
	ctx := context.Background()
	cr := must[gitpodv1.CreateRunnerResponse](t, "create runner")(c.runners.CreateRunner(ctx, req(&gitpodv1.CreateRunnerRequest{
		Name: name, Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST,
	})))
	cfg := runner.Config{
		Server: c.url, ExchangeToken: cr.GetExchangeToken(), StateDir: stateDir, Name: name,
		StopGrace: 2 * time.Second, ReadyInterval: 100 * time.Millisecond, Logger: c.logger,
	}
	if c.logger != nil {
		cfg.Level = new(slog.LevelVar)
		cfg.Level.Set(slog.LevelDebug)
	}
	stop := start(t, cfg)
	runnerID := cr.GetRunner().GetRunnerId()
	eventually(t, "the runner is ACTIVE", func() string {
		res, err := c.runners.GetRunner(ctx, req(&gitpodv1.GetRunnerRequest{RunnerId: runnerID}))
		if err != nil {
			return err.Error()
		}
		if p := res.Msg.GetRunner().GetStatus().GetPhase(); p != gitpodv1.RunnerPhase_RUNNER_PHASE_ACTIVE {
			return p.String()
		}
		return ""
	})
	res := must[gitpodv1.ListEnvironmentClassesResponse](t, "list classes")(c.envs.ListEnvironmentClasses(ctx, req(&gitpodv1.ListEnvironmentClassesRequest{
		Filter: &gitpodv1.ListEnvironmentClassesRequest_Filter{RunnerIds: []string{runnerID}},
	})))
	if len(res.GetEnvironmentClasses()) != 1 || !res.GetEnvironmentClasses()[0].GetEnabled() {
		t.Fatalf("classes of the runner: %v", res.GetEnvironmentClasses())
	}
	cfg.ExchangeToken = ""
	return res.GetEnvironmentClasses()[0].GetId(), runnerID, cfg, stop
}

// eventually polls check until it returns "" (generous: the machines are
// shared and noisy).
func eventually(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		if last = check(); last == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting until %s: %s", what, last)
}

// gitRepo makes a repository with the given files committed and returns its
// file:// URL.
func gitRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	return gitRepoWithLinks(t, files, nil)
}

// gitRepoWithLinks is gitRepo with symbolic links too (name -> target).
func gitRepoWithLinks(t *testing.T, files, links map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"init", "--quiet", "--initial-branch=main"},
		{"add", "."},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "init"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return "file://" + dir
}

func (c *client) createEnv(t *testing.T, class, repo string) string {
	t.Helper()
	spec := &gitpodv1.EnvironmentSpec{
		DesiredPhase: gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING,
		Machine:      &gitpodv1.EnvironmentSpec_Machine{Class: class},
	}
	if repo != "" {
		spec.Content = &gitpodv1.EnvironmentSpec_Content{Initializer: &gitpodv1.EnvironmentInitializer{
			Specs: []*gitpodv1.EnvironmentInitializer_Spec{{Spec: &gitpodv1.EnvironmentInitializer_Spec_Git{Git: &gitpodv1.GitInitializer{
				RemoteUri: repo, TargetMode: gitpodv1.GitInitializer_CLONE_TARGET_MODE_REMOTE_HEAD, CheckoutLocation: "repo",
			}}}},
		}}
	}
	res := must[gitpodv1.CreateEnvironmentResponse](t, "create environment")(c.envs.CreateEnvironment(context.Background(), req(&gitpodv1.CreateEnvironmentRequest{Spec: spec})))
	return res.GetEnvironment().GetId()
}

func (c *client) env(t *testing.T, id string) *gitpodv1.Environment {
	t.Helper()
	return must[gitpodv1.GetEnvironmentResponse](t, "get environment")(c.envs.GetEnvironment(context.Background(), req(&gitpodv1.GetEnvironmentRequest{EnvironmentId: id}))).GetEnvironment()
}

func (c *client) waitEnvPhase(t *testing.T, id string, want gitpodv1.EnvironmentPhase) *gitpodv1.Environment {
	t.Helper()
	var e *gitpodv1.Environment
	eventually(t, fmt.Sprintf("environment %s is %s", id, want), func() string {
		e = c.env(t, id)
		if e.GetStatus().GetPhase() != want {
			return fmt.Sprintf("phase %s, failure %v", e.GetStatus().GetPhase(), e.GetStatus().GetFailureMessage())
		}
		return ""
	})
	return e
}

func (c *client) services(t *testing.T, envID string) map[string]*gitpodv1.Service {
	t.Helper()
	res := must[gitpodv1.ListServicesResponse](t, "list services")(c.autos.ListServices(context.Background(), req(&gitpodv1.ListServicesRequest{
		Filter: &gitpodv1.ListServicesRequest_Filter{EnvironmentIds: []string{envID}},
	})))
	out := map[string]*gitpodv1.Service{}
	for _, s := range res.GetServices() {
		out[s.GetMetadata().GetReference()] = s
	}
	return out
}

func (c *client) executions(t *testing.T, envID string) []*gitpodv1.TaskExecution {
	t.Helper()
	res := must[gitpodv1.ListTaskExecutionsResponse](t, "list task executions")(c.autos.ListTaskExecutions(context.Background(), req(&gitpodv1.ListTaskExecutionsRequest{
		Filter: &gitpodv1.ListTaskExecutionsRequest_Filter{EnvironmentIds: []string{envID}},
	})))
	return res.GetTaskExecutions()
}

func (c *client) waitService(t *testing.T, envID, ref string, want gitpodv1.ServicePhase) *gitpodv1.Service {
	t.Helper()
	var s *gitpodv1.Service
	eventually(t, fmt.Sprintf("service %s is %s", ref, want), func() string {
		s = c.services(t, envID)[ref]
		if s.GetStatus().GetPhase() != want {
			return fmt.Sprintf("service %s: phase %s, failure %q", ref, s.GetStatus().GetPhase(), s.GetStatus().GetFailureMessage())
		}
		return ""
	})
	return s
}

func (c *client) waitExecution(t *testing.T, id string) *gitpodv1.TaskExecution {
	t.Helper()
	var x *gitpodv1.TaskExecution
	eventually(t, "task execution "+id+" finishes", func() string {
		x = must[gitpodv1.GetTaskExecutionResponse](t, "get task execution")(c.autos.GetTaskExecution(context.Background(), req(&gitpodv1.GetTaskExecutionRequest{Id: id}))).GetTaskExecution()
		switch x.GetStatus().GetPhase() {
		case gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_SUCCEEDED, gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_FAILED, gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_STOPPED:
			return ""
		}
		return "phase " + x.GetStatus().GetPhase().String()
	})
	return x
}

// readLog reads a log URL with the admin token.
func readLog(t *testing.T, url string, follow bool) string {
	t.Helper()
	if follow {
		url += "?follow=1"
	}
	res := getLog(t, url)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read log %s: %v", url, err)
	}
	return string(b)
}

// processWithMarker reports whether a process whose command line holds
// marker runs.
func processWithMarker(marker string) bool { return len(pidsWithMarker(marker)) > 0 }

// pidsWithMarker lists the processes whose command line contains marker.
func pidsWithMarker(marker string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), marker) {
			out = append(out, e.Name())
		}
	}
	return out
}

const automationsFile = `services:
  web:
    name: Web server
    triggeredBy: [postEnvironmentStart]
    commands:
      start: |
        echo "web starting in $PWD"
        touch ready.flag
        exec -a %[1]s-web sleep 1000
      ready: test -f ready.flag
  stubborn:
    name: Ignores SIGTERM
    commands:
      start: |
        trap '' TERM
        ( trap '' TERM; exec -a %[1]s-child sleep 1000 ) &
        exec -a %[1]s-stubborn sleep 1000
tasks:
  a:
    name: A
    command: echo "a ran"; echo "greeting=hello" >> "$RUNYARD_OUTPUT"
  b:
    name: B
    dependsOn: [a, web]
    command: echo "b ran with $GREETING"
  c:
    name: C
    dependsOn: [a]
    command: echo "c ran"
  d:
    name: D
    triggeredBy: [postEnvironmentStart]
    dependsOn: [b, c]
    command: echo "d ran"
  broken:
    name: Broken
    command: echo "about to fail"; exit 3
  after-broken:
    name: After broken
    dependsOn: [broken]
    command: echo "must never run"
`

func TestEnvironments_EndToEnd(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			marker := fmt.Sprintf("runyard-e2e-%d-%s", os.Getpid(), backend)
			c, class, _, _ := setup(t, backend, t.TempDir())
			ctx := context.Background()
			repo := gitRepo(t, map[string]string{
				".runyard/automations.yaml": fmt.Sprintf(automationsFile, marker),
				"README.md":                 "hello\n",
			})
			id := c.createEnv(t, class, repo)
			e := c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
			if loc := e.GetStatus().GetContent().GetContentLocationInMachine(); !strings.HasSuffix(loc, "/repo") {
				t.Errorf("content location %q, want the checkout", loc)
			}

			// The start trigger started web (ready probe) and ran d with its
			// diamond of dependencies.
			web := c.waitService(t, id, "web", gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING)
			if got := readLog(t, web.GetStatus().GetLogUrl(), false); !strings.Contains(got, "web starting in ") || !strings.Contains(got, "/repo") {
				t.Errorf("web log %q", got)
			}
			xs := c.executions(t, id)
			if len(xs) != 1 || xs[0].GetMetadata().GetStartedBy() != "postEnvironmentStart" {
				t.Fatalf("executions after start: %v", xs)
			}
			x := c.waitExecution(t, xs[0].GetId())
			if x.GetStatus().GetPhase() != gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_SUCCEEDED {
				t.Fatalf("diamond execution: %v", x.GetStatus())
			}
			if n := len(x.GetStatus().GetSteps()); n != 5 {
				t.Errorf("diamond steps: %d, want 5 (a, web, b, c, d)", n)
			}
			if x.GetMetadata().GetStartedAt() == nil || x.GetMetadata().GetCompletedAt() == nil {
				t.Errorf("startedAt/completedAt unset: %v", x.GetMetadata())
			}
			outputs := map[string]string{}
			for _, st := range x.GetStatus().GetSteps() {
				for k, v := range st.GetOutput() {
					outputs[k] = v
				}
			}
			if outputs["greeting"] != "hello" {
				t.Errorf("step outputs %v, want greeting=hello", outputs)
			}
			log := readLog(t, x.GetStatus().GetLogUrl(), false)
			for _, want := range []string{"a ran", "c ran", "d ran"} {
				if !strings.Contains(log, want) {
					t.Errorf("execution log lacks %q:\n%s", want, log)
				}
			}

			// A failing middle step fails the execution; later groups never
			// start.
			tasks := must[gitpodv1.ListTasksResponse](t, "list tasks")(c.autos.ListTasks(ctx, req(&gitpodv1.ListTasksRequest{
				Filter: &gitpodv1.ListTasksRequest_Filter{References: []string{"after-broken"}},
			}))).GetTasks()
			if len(tasks) != 1 {
				t.Fatalf("tasks named after-broken: %d", len(tasks))
			}
			started := must[gitpodv1.StartTaskResponse](t, "start task")(c.autos.StartTask(ctx, req(&gitpodv1.StartTaskRequest{Id: tasks[0].GetId()})))
			x = c.waitExecution(t, started.GetTaskExecution().GetId())
			if x.GetStatus().GetPhase() != gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_FAILED || len(x.GetStatus().GetSteps()) != 1 {
				t.Errorf("broken execution: %v", x.GetStatus())
			}
			// The failure names the step as people know it, and says why.
			if msg := x.GetStatus().GetFailureMessage(); !strings.Contains(msg, `"Broken"`) || !strings.Contains(msg, "group 1 of 2") ||
				!strings.Contains(msg, "3") {
				t.Errorf("broken execution's failure message = %q, want the step's name, its group and the exit code", msg)
			}
			if log := readLog(t, x.GetStatus().GetLogUrl(), false); strings.Contains(log, "must never run") || !strings.Contains(log, "about to fail") {
				t.Errorf("broken execution log:\n%s", log)
			}

			// A service that ignores SIGTERM, with a child that does too,
			// is killed after the grace period with nothing left behind.
			stubborn := c.services(t, id)["stubborn"]
			if _, err := c.autos.StartService(ctx, req(&gitpodv1.StartServiceRequest{Id: stubborn.GetId()})); err != nil {
				t.Fatal(err)
			}
			c.waitService(t, id, "stubborn", gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING)
			eventually(t, "the stubborn child runs", func() string {
				if !processWithMarker(marker + "-child") {
					return "no child yet"
				}
				return ""
			})
			if _, err := c.autos.StopService(ctx, req(&gitpodv1.StopServiceRequest{Id: stubborn.GetId()})); err != nil {
				t.Fatal(err)
			}
			c.waitService(t, id, "stubborn", gitpodv1.ServicePhase_SERVICE_PHASE_STOPPED)
			for _, m := range []string{marker + "-stubborn", marker + "-child"} {
				if processWithMarker(m) {
					t.Errorf("process %s outlived its stopped service", m)
				}
			}

			// Stopping the environment stops its services.
			if _, err := c.envs.StopEnvironment(ctx, req(&gitpodv1.StopEnvironmentRequest{EnvironmentId: id})); err != nil {
				t.Fatal(err)
			}
			c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED)
			c.waitService(t, id, "web", gitpodv1.ServicePhase_SERVICE_PHASE_STOPPED)
			if processWithMarker(marker) {
				t.Errorf("a process of the stopped environment still runs")
			}

			// Starting it again runs the start trigger again.
			if _, err := c.envs.StartEnvironment(ctx, req(&gitpodv1.StartEnvironmentRequest{EnvironmentId: id})); err != nil {
				t.Fatal(err)
			}
			c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
			c.waitService(t, id, "web", gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING)
			eventually(t, "the start trigger ran d again", func() string {
				n := 0
				for _, x := range c.executions(t, id) {
					if x.GetMetadata().GetStartedBy() == "postEnvironmentStart" {
						n++
					}
				}
				if n != 2 {
					return fmt.Sprintf("%d executions by postEnvironmentStart", n)
				}
				return ""
			})

			// Deleting it stops everything and removes it.
			if _, err := c.envs.DeleteEnvironment(ctx, req(&gitpodv1.DeleteEnvironmentRequest{EnvironmentId: id})); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the environment is gone", func() string {
				_, err := c.envs.GetEnvironment(ctx, req(&gitpodv1.GetEnvironmentRequest{EnvironmentId: id}))
				if connect.CodeOf(err) != connect.CodeNotFound {
					return fmt.Sprintf("get: %v", err)
				}
				return ""
			})
			eventually(t, "no process of the deleted environment runs", func() string {
				if processWithMarker(marker) {
					return "a process runs"
				}
				return ""
			})
		})
	}
}

func TestEnvironments_FailedCloneAndEmptyWorkspace(t *testing.T) {
	c, class, _, _ := setup(t, testutil.SQLite, t.TempDir())
	bad := c.createEnv(t, class, "file:///nonexistent/repository")
	e := c.waitEnvPhase(t, bad, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED)
	if msg := strings.Join(e.GetStatus().GetFailureMessage(), " "); !strings.Contains(msg, "clone file:///nonexistent/repository") {
		t.Errorf("failure message %q does not name the clone", msg)
	}

	empty := c.createEnv(t, class, "")
	e = c.waitEnvPhase(t, empty, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
	if loc := e.GetStatus().GetContent().GetContentLocationInMachine(); loc == "" {
		t.Errorf("empty workspace has no location")
	} else if st, err := os.Stat(loc); err != nil || !st.IsDir() {
		t.Errorf("workspace %s: %v", loc, err)
	}
}

const restartFile = `services:
  api:
    name: API
    triggeredBy: [postEnvironmentStart]
    commands:
      start: exec -a %[1]s-api sleep 1000
  boxed:
    name: Boxed
    runsOn:
      docker:
        image: alpine:3
    commands:
      start: echo "must not run on the host"
tasks:
  check-secret:
    name: Check secret
    command: test "$(printf %%s "$API_TOKEN" | sha256sum | cut -c1-64)" = "%[2]s" && echo "secret ok"
  print-secret:
    name: Print secret
    command: echo "token=$API_TOKEN"; printf 'split=%%s' "${API_TOKEN%%-*}"; sleep 0.1; printf '%%s\n' "-${API_TOKEN#*-}"
  long:
    name: Long
    command: exec -a %[1]s-long sleep 1000
  sleeper:
    name: Sleeper
    command: echo "sleeping"; exec -a %[1]s-sleeper sleep 1000
  ticker:
    name: Ticker
    command: for i in 1 2 3 4 5; do echo "tick $i"; sleep 0.2; done
`

func TestEnvironments_SecretsDockerFollowAndRestart(t *testing.T) {
	marker := fmt.Sprintf("runyard-e2e-restart-%d", os.Getpid())
	state := t.TempDir()
	logs := &syncBuffer{}
	c, class, cfg, stopRunner := setup(t, testutil.SQLite, state, logs)
	ctx := context.Background()
	secrets := c.secrets

	// The file names the value by its hash, so that the value itself is
	// nowhere on the runner but in the process's environment.
	sum := sha256.Sum256([]byte("s3cret-value"))
	repo := gitRepo(t, map[string]string{".runyard/automations.yaml": fmt.Sprintf(restartFile, marker, hex.EncodeToString(sum[:]))})
	id := c.createEnv(t, class, repo)
	e := c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
	// An organization secret marked environmentVariable reaches the tasks
	// (the desired state is sent again when the environment changes).
	must[gitpodv1.CreateSecretResponse](t, "create secret")(secrets.CreateSecret(ctx, req(&gitpodv1.CreateSecretRequest{
		Name: "API_TOKEN", Value: "s3cret-value",
		Mount: &gitpodv1.CreateSecretRequest_EnvironmentVariable{EnvironmentVariable: true},
		Scope: &gitpodv1.SecretScope{Scope: &gitpodv1.SecretScope_OrganizationId{OrganizationId: e.GetMetadata().GetOrganizationId()}},
	})))
	taskID := func(ref string) string {
		ts := must[gitpodv1.ListTasksResponse](t, "list tasks")(c.autos.ListTasks(ctx, req(&gitpodv1.ListTasksRequest{
			Filter: &gitpodv1.ListTasksRequest_Filter{EnvironmentIds: []string{id}, References: []string{ref}},
		}))).GetTasks()
		if len(ts) != 1 {
			t.Fatalf("task %s: %d found", ref, len(ts))
		}
		return ts[0].GetId()
	}
	start := func(ref string) string {
		return must[gitpodv1.StartTaskResponse](t, "start "+ref)(c.autos.StartTask(ctx, req(&gitpodv1.StartTaskRequest{Id: taskID(ref)}))).GetTaskExecution().GetId()
	}
	x := c.waitExecution(t, start("check-secret"))
	if x.GetStatus().GetPhase() != gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_SUCCEEDED {
		t.Errorf("the secret did not reach the task: %v\n%s", x.GetStatus(), readLog(t, x.GetStatus().GetLogUrl(), false))
	}

	// A step that prints the secret shows *** in its log, also when the
	// value is split across writes.
	x = c.waitExecution(t, start("print-secret"))
	if got := readLog(t, x.GetStatus().GetLogUrl(), false); strings.Contains(got, "s3cret") || !strings.Contains(got, "token=***") || !strings.Contains(got, "split=***") {
		t.Errorf("the secret's value was not masked in the step's log: %q", got)
	}

	// Stopping an execution mid-run stops its step, nothing left.
	sleeper := start("sleeper")
	eventually(t, "the sleeper runs", func() string {
		if !processWithMarker(marker + "-sleeper") {
			return "not yet"
		}
		return ""
	})
	if _, err := c.autos.StopTaskExecution(ctx, req(&gitpodv1.StopTaskExecutionRequest{Id: sleeper})); err != nil {
		t.Fatal(err)
	}
	if x := c.waitExecution(t, sleeper); x.GetStatus().GetPhase() != gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_STOPPED {
		t.Errorf("stopped execution: %v", x.GetStatus())
	}
	if processWithMarker(marker + "-sleeper") {
		t.Errorf("the stopped execution's process still runs")
	}

	// runsOn.docker without a Docker engine fails and never runs on the
	// host.
	boxed := c.services(t, id)["boxed"]
	if _, err := c.autos.StartService(ctx, req(&gitpodv1.StartServiceRequest{Id: boxed.GetId()})); err != nil {
		t.Fatal(err)
	}
	boxed = c.waitService(t, id, "boxed", gitpodv1.ServicePhase_SERVICE_PHASE_FAILED)
	if !strings.Contains(boxed.GetStatus().GetFailureMessage(), "Docker") {
		t.Errorf("docker service failure %q does not say why", boxed.GetStatus().GetFailureMessage())
	}

	// ?follow=1 streams a log until its run ends.
	ticker := start("ticker")
	var logURL string
	eventually(t, "the ticker has a log", func() string {
		x := must[gitpodv1.GetTaskExecutionResponse](t, "get")(c.autos.GetTaskExecution(ctx, req(&gitpodv1.GetTaskExecutionRequest{Id: ticker}))).GetTaskExecution()
		if logURL = x.GetStatus().GetLogUrl(); logURL == "" || len(x.GetStatus().GetSteps()) == 0 {
			return "no log yet"
		}
		return ""
	})
	if got := readLog(t, logURL, true); !strings.Contains(got, "tick 1") || !strings.Contains(got, "tick 5") {
		t.Errorf("followed log %q lacks the ticks", got)
	}

	// A runner restart: the running service and task step outlive the
	// runner process under their holders and the next one adopts them
	// (same processes, never stopped, nothing run twice).
	long := start("long")
	eventually(t, "the long task runs", func() string {
		if !processWithMarker(marker + "-long") {
			return "not yet"
		}
		return ""
	})
	apiBefore := c.waitService(t, id, "api", gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING)
	apiPids, longPids := pidsWithMarker(marker+"-api"), pidsWithMarker(marker+"-long")
	stopRunner()
	for _, p := range []struct {
		name   string
		before []string
	}{{"api", apiPids}, {"long", longPids}} {
		if got := pidsWithMarker(marker + "-" + p.name); len(p.before) == 0 || fmt.Sprint(got) != fmt.Sprint(p.before) {
			t.Errorf("%s processes after the runner stopped = %v, want %v still running", p.name, got, p.before)
		}
	}
	testutil.StartRunner(t, cfg)
	// The adopted step is stopped like any other: its execution ends
	// STOPPED, not failed by the restart.
	time.Sleep(300 * time.Millisecond)
	if got := pidsWithMarker(marker + "-long"); fmt.Sprint(got) != fmt.Sprint(longPids) {
		t.Errorf("long processes after the restart = %v, want the same %v", got, longPids)
	}
	if _, err := c.autos.StopTaskExecution(ctx, req(&gitpodv1.StopTaskExecutionRequest{Id: long})); err != nil {
		t.Fatal(err)
	}
	x = c.waitExecution(t, long)
	if x.GetStatus().GetPhase() != gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_STOPPED {
		t.Errorf("adopted execution after a stop: %v", x.GetStatus())
	}
	eventually(t, "the long step is gone", func() string {
		if processWithMarker(marker + "-long") {
			return "still runs"
		}
		return ""
	})
	apiAfter := c.waitService(t, id, "api", gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING)
	if got := pidsWithMarker(marker + "-api"); fmt.Sprint(got) != fmt.Sprint(apiPids) {
		t.Errorf("api processes after the restart = %v, want the same %v", got, apiPids)
	}
	if apiAfter.GetStatus().GetLogUrl() != apiBefore.GetStatus().GetLogUrl() {
		t.Errorf("api log after the restart %q, want the same run's %q", apiAfter.GetStatus().GetLogUrl(), apiBefore.GetStatus().GetLogUrl())
	}

	// The secret's value is in no log line of the control plane or the
	// runner, and in no file of the runner's state.
	if strings.Contains(logs.String(), "s3cret-value") {
		t.Errorf("the secret's value is in a log")
	}
	if !strings.Contains(logs.String(), "level=DEBUG") {
		t.Errorf("the logs were not captured at debug level; the check above proves nothing")
	}
	_ = filepath.WalkDir(state, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), "s3cret-value") {
			t.Errorf("the secret's value is in %s", path)
		}
		return nil
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestEnvironments_SeedExampleFile runs seed 003's example automations file
// verbatim, from .gitpod/automations.yaml (the vendor's place for it). npm
// and curl are not installed here, so small stand-ins on PATH play them:
// `npm run dev` serves until stopped, `npm run build` builds, and the ready
// probe's curl succeeds once the dev server started.
func TestEnvironments_SeedExampleFile(t *testing.T) {
	seed, err := os.ReadFile("../../automations/spec/testdata/seed-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	stand := map[string]string{
		"npm": `#!/bin/sh
case "$1 $2" in
"run dev") echo "dev server up"; touch .dev-started; exec sleep 1000 ;;
"run build") echo "built the project" ;;
*) echo "npm stand-in: unexpected $*" >&2; exit 2 ;;
esac
`,
		"curl": "#!/bin/sh\ntest -f .dev-started\n",
	}
	for name, body := range stand {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of the control plane and the runner:\n%s", logs.String())
		}
	})
	c, class, _, _ := setup(t, testutil.SQLite, t.TempDir(), logs)
	id := c.createEnv(t, class, gitRepo(t, map[string]string{".gitpod/automations.yaml": string(seed)}))
	e := c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
	if p := e.GetStatus().GetAutomationsFile().GetAutomationsFilePath(); p != ".gitpod/automations.yaml" {
		t.Errorf("automations file path %q", p)
	}
	web := c.waitService(t, id, "web-server", gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING)
	if web.GetMetadata().GetName() != "Web Server" || web.GetSpec().GetCommands().GetReady() != "curl -s http://localhost:3000" {
		t.Errorf("web-server as stored: %v", web)
	}
	xs := c.executions(t, id)
	if len(xs) != 1 {
		t.Fatalf("executions: %v", xs)
	}
	x := c.waitExecution(t, xs[0].GetId())
	if x.GetStatus().GetPhase() != gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_SUCCEEDED || x.GetMetadata().GetStartedBy() != "postEnvironmentStart" {
		t.Errorf("build execution: %v %v", x.GetMetadata(), x.GetStatus())
	}
	if log := readLog(t, x.GetStatus().GetLogUrl(), false); !strings.Contains(log, "built the project") {
		t.Errorf("build log: %q", log)
	}
}

// startTask starts the task ref of environment envID and returns the
// execution's ID.
func (c *client) startTask(t *testing.T, envID, ref string) string {
	t.Helper()
	ctx := context.Background()
	ts := must[gitpodv1.ListTasksResponse](t, "list tasks")(c.autos.ListTasks(ctx, req(&gitpodv1.ListTasksRequest{
		Filter: &gitpodv1.ListTasksRequest_Filter{EnvironmentIds: []string{envID}, References: []string{ref}},
	}))).GetTasks()
	if len(ts) != 1 {
		t.Fatalf("task %s: %d found", ref, len(ts))
	}
	return must[gitpodv1.StartTaskResponse](t, "start "+ref)(c.autos.StartTask(ctx, req(&gitpodv1.StartTaskRequest{Id: ts[0].GetId()}))).GetTaskExecution().GetId()
}

// stepOutputs merges the outputs of an execution's steps.
func stepOutputs(x *gitpodv1.TaskExecution) map[string]string {
	out := map[string]string{}
	for _, st := range x.GetStatus().GetSteps() {
		for k, v := range st.GetOutput() {
			out[k] = v
		}
	}
	return out
}

func sha(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// secretFilesFile's task reads the mounted secret file and sets its hash
// and mode as outputs: the hash proves the content without putting the
// value in a log, an output or the runner's records.
const secretFilesFile = `tasks:
  show:
    name: Show the secret file
    triggeredBy: [postEnvironmentStart]
    command: |
      f="$RUNYARD_WORKSPACE/config/db-password"
      test -f "$f" || { echo "no secret file at $f"; exit 4; }
      echo "sum=$(sha256sum < "$f" | cut -c1-64)" >> "$RUNYARD_OUTPUT"
      echo "mode=$(stat -c %a "$f")" >> "$RUNYARD_OUTPUT"
`

// TestEnvironments_SecretFiles: secrets with a filePath are written in the
// environment's workspace (mode 0600) before its automations start, follow
// UpdateSecretValue, go when the secret or the environment goes, and a path
// that leads out of the workspace through a symbolic link is refused and
// named in the environment's status, never written.
func TestEnvironments_SecretFiles(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			state := t.TempDir()
			logs := &syncBuffer{}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("logs of the control plane and the runner:\n%s", logs.String())
				}
			})
			c, class, _, _ := setup(t, backend, state, logs)
			ctx := context.Background()
			const one, two, three, escaped = "file-s3cret-one", "file-s3cret-two", "file-s3cret-three", "file-s3cret-escaped"
			createSecret := func(name, value, path string) string {
				return must[gitpodv1.CreateSecretResponse](t, "create secret "+name)(c.secrets.CreateSecret(ctx, req(&gitpodv1.CreateSecretRequest{
					Name: name, Value: value, Mount: &gitpodv1.CreateSecretRequest_FilePath{FilePath: path},
				}))).GetSecret().GetId()
			}
			deleteSecret := func(id string) {
				must[gitpodv1.DeleteSecretResponse](t, "delete secret")(c.secrets.DeleteSecret(ctx, req(&gitpodv1.DeleteSecretRequest{SecretId: id})))
			}
			// The checkout's "link" leads out of the workspace.
			outside := t.TempDir()
			repo := gitRepoWithLinks(t, map[string]string{".runyard/automations.yaml": secretFilesFile}, map[string]string{"link": outside})
			good := createSecret("db password", one, "/config/db-password")
			bad := createSecret("escape", escaped, "/repo/link/stolen")

			id := c.createEnv(t, class, repo)
			e := c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
			ws := filepath.Dir(e.GetStatus().GetContent().GetContentLocationInMachine())
			mounted := filepath.Join(ws, "config", "db-password")
			failure := func() string { return strings.Join(c.env(t, id).GetStatus().GetFailureMessage(), " ") }
			if msg := failure(); !strings.Contains(msg, "secret file /repo/link/stolen") || !strings.Contains(msg, "symbolic link /repo/link") {
				t.Errorf("failure message %q does not name the refused file and its link", msg)
			}
			if p := c.env(t, id).GetStatus().GetContent().GetPhase(); p != gitpodv1.EnvironmentStatus_CONTENT_PHASE_READY {
				t.Errorf("content phase %s: the checkout is in place, only a secret file was refused", p)
			}
			if entries, err := os.ReadDir(outside); err != nil || len(entries) != 0 {
				t.Errorf("something was written outside the workspace: %v %v", entries, err)
			}

			// The start trigger's task found the file with its value.
			xs := c.executions(t, id)
			if len(xs) != 1 {
				t.Fatalf("executions after start: %d", len(xs))
			}
			x := c.waitExecution(t, xs[0].GetId())
			if out := stepOutputs(x); x.GetStatus().GetPhase() != gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_SUCCEEDED ||
				out["sum"] != sha(one) || out["mode"] != "600" {
				t.Fatalf("the task did not read the secret file: %v %v\n%s", x.GetStatus().GetPhase(), out, readLog(t, x.GetStatus().GetLogUrl(), false))
			}
			if st, err := os.Stat(mounted); err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("the mounted file: %v %v", st, err)
			}

			// A new value reaches the file while the environment runs.
			must[gitpodv1.UpdateSecretValueResponse](t, "update secret value")(c.secrets.UpdateSecretValue(ctx, req(&gitpodv1.UpdateSecretValueRequest{SecretId: good, Value: two})))
			eventually(t, "the new value reaches the file", func() string {
				if b, err := os.ReadFile(mounted); err != nil || sha(string(b)) != sha(two) {
					return fmt.Sprintf("not the new value (%v)", err)
				}
				return ""
			})
			x = c.waitExecution(t, c.startTask(t, id, "show"))
			if out := stepOutputs(x); out["sum"] != sha(two) || out["mode"] != "600" {
				t.Errorf("after the update the task read %v", out)
			}

			// The values are in no log line and in no file of the runner's
			// state but the mounted one.
			checkLeaks := func(except string) {
				t.Helper()
				for _, v := range []string{one, two, three, escaped} {
					if strings.Contains(logs.String(), v) {
						t.Errorf("a secret file's value is in a log")
					}
				}
				_ = filepath.WalkDir(state, func(path string, d os.DirEntry, err error) error {
					if err != nil || d.IsDir() || path == except {
						return nil
					}
					if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte("file-s3cret-")) {
						t.Errorf("a secret file's value is in %s", path)
					}
					return nil
				})
			}
			checkLeaks(mounted)

			// Deleting the refused secret clears the failure; deleting the
			// mounted one removes its file.
			deleteSecret(bad)
			eventually(t, "the failure message clears", func() string { return failure() })
			deleteSecret(good)
			eventually(t, "the file of the deleted secret goes", func() string {
				if _, err := os.Lstat(mounted); !errors.Is(err, os.ErrNotExist) {
					return fmt.Sprintf("still there (%v)", err)
				}
				return ""
			})
			x = c.waitExecution(t, c.startTask(t, id, "show"))
			if x.GetStatus().GetPhase() != gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_FAILED {
				t.Errorf("the task found a deleted secret's file: %v", x.GetStatus())
			}

			// A secret created while the environment runs is written at
			// once; deleting the environment removes it with the workspace.
			createSecret("db password again", three, "/config/db-password")
			eventually(t, "a new secret's file appears", func() string {
				if b, err := os.ReadFile(mounted); err != nil || sha(string(b)) != sha(three) {
					return fmt.Sprintf("not there (%v)", err)
				}
				return ""
			})
			checkLeaks(mounted)
			must[gitpodv1.DeleteEnvironmentResponse](t, "delete environment")(c.envs.DeleteEnvironment(ctx, req(&gitpodv1.DeleteEnvironmentRequest{EnvironmentId: id})))
			eventually(t, "the environment is gone", func() string {
				_, err := c.envs.GetEnvironment(ctx, req(&gitpodv1.GetEnvironmentRequest{EnvironmentId: id}))
				if connect.CodeOf(err) != connect.CodeNotFound {
					return fmt.Sprintf("get: %v", err)
				}
				return ""
			})
			if _, err := os.Lstat(mounted); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the secret file outlived its environment: %v", err)
			}
			checkLeaks("")
		})
	}
}

// startDeletable runs a runner daemon like testutil.StartRunner, for a
// runner the test deletes: the daemon then ends with ErrDeleted (confirmed)
// or refused (forced), which is what the test wants.
func startDeletable(tb testing.TB, cfg runner.Config) func() {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := runner.New(ctx, cfg)
	if err != nil {
		cancel()
		tb.Fatalf("start runner daemon: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, runner.ErrDeleted) && apperr.CodeOf(err) != apperr.CodeUnauthenticated {
				tb.Errorf("runner daemon: %v", err)
			}
			d.Close()
		})
	}
	tb.Cleanup(stop)
	return stop
}

const runnerDeletedFile = `services:
  svc:
    name: Service
    triggeredBy: [postEnvironmentStart]
    commands:
      start: exec -a %[1]s-svc sleep 1000
tasks:
  once:
    name: Once
    triggeredBy: [postEnvironmentStart]
    command: echo once
`

// TestEnvironments_RunnerDeleted: a deleted runner's environments go with
// it, with their services, tasks and executions, whether its daemon
// confirmed the deletion or it was forced.
func TestEnvironments_RunnerDeleted(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			c := startServer(t, backend)
			ctx := context.Background()
			for _, force := range []bool{false, true} {
				name := "confirmed"
				if force {
					name = "forced"
				}
				t.Run(name, func(t *testing.T) {
					marker := fmt.Sprintf("runyard-e2e-rdel-%d-%s-%s", os.Getpid(), backend, name)
					class, runnerID, _, _ := c.addRunner(t, "deleted-"+name, t.TempDir(), startDeletable)
					id := c.createEnv(t, class, gitRepo(t, map[string]string{".runyard/automations.yaml": fmt.Sprintf(runnerDeletedFile, marker)}))
					c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
					c.waitService(t, id, "svc", gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING)
					tasks := func() []*gitpodv1.Task {
						return must[gitpodv1.ListTasksResponse](t, "list tasks")(c.autos.ListTasks(ctx, req(&gitpodv1.ListTasksRequest{
							Filter: &gitpodv1.ListTasksRequest_Filter{EnvironmentIds: []string{id}},
						}))).GetTasks()
					}
					if len(tasks()) != 1 || len(c.executions(t, id)) != 1 {
						t.Fatalf("before the deletion: %d tasks, %d executions", len(tasks()), len(c.executions(t, id)))
					}

					must[gitpodv1.DeleteRunnerResponse](t, "delete runner")(c.runners.DeleteRunner(ctx, req(&gitpodv1.DeleteRunnerRequest{RunnerId: runnerID, Force: force})))
					eventually(t, "the runner is deleted", func() string {
						res, err := c.runners.GetRunner(ctx, req(&gitpodv1.GetRunnerRequest{RunnerId: runnerID}))
						if err != nil {
							return fmt.Sprintf("get: %v", err)
						}
						if ph := res.Msg.GetRunner().GetStatus().GetPhase(); ph != gitpodv1.RunnerPhase_RUNNER_PHASE_DELETED {
							return fmt.Sprintf("phase %v", ph)
						}
						return ""
					})
					// A confirmed deletion removes the environments right
					// after the runner, in the runner's stream.
					eventually(t, "the environment is gone", func() string {
						_, err := c.envs.GetEnvironment(ctx, req(&gitpodv1.GetEnvironmentRequest{EnvironmentId: id}))
						if connect.CodeOf(err) != connect.CodeNotFound {
							return fmt.Sprintf("get: %v", err)
						}
						return ""
					})
					envs := must[gitpodv1.ListEnvironmentsResponse](t, "list environments")(c.envs.ListEnvironments(ctx, req(&gitpodv1.ListEnvironmentsRequest{})))
					for _, e := range envs.GetEnvironments() {
						if e.GetId() == id {
							t.Errorf("the deleted runner's environment is listed")
						}
					}
					if n, x := len(c.services(t, id)), len(c.executions(t, id)); n != 0 || x != 0 || len(tasks()) != 0 {
						t.Errorf("after the deletion: %d services, %d tasks, %d executions", n, len(tasks()), x)
					}
					eventually(t, "no process of the deleted runner's environment runs", func() string {
						if processWithMarker(marker) {
							return "a process runs"
						}
						return ""
					})
				})
			}
		})
	}
}
