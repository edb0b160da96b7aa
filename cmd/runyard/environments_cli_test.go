package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// envAutomations is the automations file of the CLI tests' repository: a
// service with a ready probe, a task that depends on a task (slow enough
// for --wait to see it run) and on the service, a slow task for followed logs and a failing one. %[1]s is a
// marker unique to the test, in the command lines of the processes.
const envAutomations = `services:
  web:
    name: Web
    triggeredBy: [postEnvironmentStart]
    commands:
      start: |
        echo "web starting in $PWD"
        touch ready.flag
        exec -a %[1]s-web sleep 1000
      ready: test -f ready.flag
tasks:
  build:
    name: Build
    command: sleep 1; echo "built %[1]s"; echo "artifact=app.bin" >> "$RUNYARD_OUTPUT"
  test:
    name: Test
    dependsOn: [build, web]
    command: echo "tests ok"
  ticker:
    name: Ticker
    command: for i in 1 2 3 4 5; do echo "tick $i"; sleep 0.2; done
  broken:
    name: Broken
    command: echo "about to fail"; exit 3
`

// makeGitRepo commits files into a new repository and returns its file://
// URL.
func makeGitRepo(t *testing.T, files map[string]string) string {
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

// uuidRe matches an object ID.
var uuidRe = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// cliEnvironment is an environment as `runyard environments ... -o json`
// prints it.
type cliEnvironment struct {
	ID       string `json:"id"`
	Metadata struct {
		Name     string `json:"name"`
		RunnerID string `json:"runnerId"`
	} `json:"metadata"`
	Status struct {
		Phase          string   `json:"phase"`
		FailureMessage []string `json:"failureMessage"`
		Content        struct {
			ContentLocationInMachine string `json:"contentLocationInMachine"`
		} `json:"content"`
	} `json:"status"`
}

// rowWith returns the fields of the first line of table whose column col
// is value, nil when there is none.
func rowWith(table string, col int, value string) []string {
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > col && f[col] == value {
			return f
		}
	}
	return nil
}

// requireLines checks that out holds each of want, in this order.
func requireLines(t *testing.T, what, out string, want ...string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("%s: output lacks %q (in this order):\n%s", what, w, out)
		}
		rest = rest[i+len(w):]
	}
}

// TestEnvironmentsCLI drives environments and their automations through the
// CLI against a real server and a real runner: an environment cloned from a
// file:// repository, its service running after a ready probe, a task with
// dependencies waited for with progress, logs (followed too), a failing
// task, the automations file checked locally and updated, stop and delete.
func TestEnvironmentsCLI(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			testEnvironmentsCLI(t, b.databaseURL(t))
		})
	}
}

func testEnvironmentsCLI(t *testing.T, dbURL string) {
	marker := fmt.Sprintf("runyard-cli-env-%d-%d", os.Getpid(), time.Now().UnixNano())
	s := startServer(t, serverConfig{DatabaseURL: dbURL, Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
	runnerID, exchange := registerRunner(t, s, "cli-env-host")
	startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "state"), "--stop-grace", "5s")
	eventually(t, "the runner is ACTIVE", func() bool {
		r, _ := phaseOf(t, s, runnerID)
		return r.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
	})
	t.Cleanup(func() {
		if processWithArg(marker) {
			t.Errorf("a process of the test (%s) outlived it", marker)
		}
	})
	repo := makeGitRepo(t, map[string]string{".runyard/automations.yaml": fmt.Sprintf(envAutomations, marker)})
	files := t.TempDir()
	writeFile := func(name, body string) string {
		t.Helper()
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("Validate", func(t *testing.T) {
		// No control plane is needed: the server flag points nowhere.
		p := writeFile("good.yaml", fmt.Sprintf(envAutomations, marker))
		r := runCLI(t, "", nil, "--server", "http://127.0.0.1:1", "automations", "validate", "-f", p)
		if r.Code != 0 || r.Stderr != "" {
			t.Fatalf("validate of a good file: exit %d, stderr %q", r.Code, r.Stderr)
		}
		requireLines(t, "validate", r.Stdout, "is valid: 1 service, 4 tasks.", "service", "web", "task", "test", "after build, web",
			"On postEnvironmentStart: web")

		for _, tc := range []struct {
			name, body string
			want       []string
		}{
			{"ErrUnknownField", "services:\n  web:\n    commands:\n      strat: echo hi\n", []string{"services.web.commands.strat", "line 4", `"start"`}},
			{"ErrWrongType", "tasks:\n  a:\n    command: [echo]\n", []string{"tasks.a.command", "string"}},
			{"ErrMissingDependency", "tasks:\n  a:\n    command: x\n    dependsOn: [nope]\n", []string{"tasks.a.dependsOn[0]", "nope"}},
			{"ErrCycle", "tasks:\n  a: {command: x, dependsOn: [b]}\n  b: {command: x, dependsOn: [a]}\n", []string{"a -> b -> a"}},
			{"ErrTrigger", "tasks:\n  a:\n    command: x\n    triggeredBy: [beforeSnapshot]\n", []string{"tasks.a.triggeredBy[0]"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := writeFile(tc.name+".yaml", tc.body)
				r := runCLI(t, "", nil, "--server", "http://127.0.0.1:1", "automations", "validate", "-f", p)
				requireOneLineError(t, r, 2, append([]string{tc.name + ".yaml: "}, tc.want...)...)
			})
		}
		r = runCLI(t, "", nil, "automations", "validate", "-f", filepath.Join(files, "missing.yaml"))
		requireOneLineError(t, r, 2, "missing.yaml")
	})

	t.Run("FailedClone", func(t *testing.T) {
		r := s.run(t, adminToken, "environments", "create", "--git", "file:///nonexistent/repository", "--wait")
		if r.Code != 1 {
			t.Fatalf("create --wait of a bad clone: exit %d, want 1; stdout:\n%s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
		}
		requireOneLine(t, "create --wait of a bad clone", r.Stderr, "failed", "clone file:///nonexistent/repository")
		requireLines(t, "create --wait of a bad clone", r.Stdout, "creating", "stopped", "failed: clone")
	})

	// Create and wait: the table row, then the phases as they come.
	var envID string
	t.Run("Create", func(t *testing.T) {
		out := s.mustRun(t, adminToken, "environments", "create", "--git", repo, "--name", "cli-env", "--wait")
		lines := strings.Split(out, "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[0], "ID ") {
			t.Fatalf("create output:\n%s", out)
		}
		envID = strings.Fields(lines[1])[0]
		if !uuidRe.MatchString(envID) {
			t.Fatalf("create output has no environment ID:\n%s", out)
		}
		requireLines(t, "create --wait", out, "cli-env", "running", "Environment "+envID+" is running (")
	})
	if envID == "" {
		t.FailNow()
	}

	t.Run("CreateFromContextURL", func(t *testing.T) {
		// A local path is a context URL for development; the JSON output
		// shows what it was parsed into and the timeout.
		var got struct {
			Environment struct {
				ID       string
				Metadata struct{ OriginalContextURL string }
				Spec     struct {
					Timeout struct{ Disconnected string }
					Content struct {
						Initializer struct {
							Specs []struct{ Git struct{ RemoteURI string } }
						}
					}
				}
			}
		}
		local := strings.TrimPrefix(makeGitRepo(t, map[string]string{"README": "plain\n"}), "file://")
		s.mustJSON(t, adminToken, &got, "environments", "create", "--runner", runnerID, "--context-url", local, "--inactivity-timeout", "1h", "--name", "from-context")
		e := got.Environment
		if e.Metadata.OriginalContextURL != local || e.Spec.Timeout.Disconnected != "3600s" ||
			len(e.Spec.Content.Initializer.Specs) != 1 || e.Spec.Content.Initializer.Specs[0].Git.RemoteURI != "file://"+local {
			t.Fatalf("created %+v", e)
		}
		s.mustRun(t, adminToken, "environments", "delete", "--yes", e.ID, "--force")
	})

	var workspace string
	t.Run("GetAndList", func(t *testing.T) {
		var got struct{ Environment cliEnvironment }
		s.mustJSON(t, adminToken, &got, "environments", "get", envID)
		workspace = got.Environment.Status.Content.ContentLocationInMachine
		if !filepath.IsAbs(workspace) {
			t.Errorf("workspace %q, want an absolute path on the runner", workspace)
		}
		if e := got.Environment; e.ID != envID || e.Status.Phase != "ENVIRONMENT_PHASE_RUNNING" || e.Metadata.RunnerID != runnerID || e.Metadata.Name != "cli-env" {
			t.Fatalf("environments get -o json = %+v", e)
		}
		out := s.mustRun(t, adminToken, "environments", "get", envID)
		requireLines(t, "environments get", out, "ID:", envID, "Phase:", "running", "Runner:", runnerID, "Content:", repo,
			"Automations file:", ".runyard/automations.yaml")
		row := tableRow(t, s.mustRun(t, adminToken, "environments", "list"), envID)
		if got, want := row[1:4], []string{"cli-env", "running", "running"}; !slices.Equal(got, want) {
			t.Errorf("environments list row %q, want %q after the ID", row, want)
		}
		var list struct{ Environments []cliEnvironment }
		s.mustJSON(t, adminToken, &list, "environments", "list", "--phase", "running")
		if len(list.Environments) != 1 || list.Environments[0].ID != envID {
			t.Errorf("environments list --phase running = %+v, want only %s", list.Environments, envID)
		}
	})

	t.Run("ServiceRunning", func(t *testing.T) {
		// The start trigger started web; its ready probe decides when it
		// runs.
		var table string
		eventually(t, "services list shows web running", func() bool {
			table = s.mustRun(t, adminToken, "services", "list", "--environment", envID)
			row := rowWith(table, 1, "web")
			return row != nil && row[3] == "running"
		})
		if got, want := strings.Fields(strings.SplitN(table, "\n", 2)[0]), []string{"ID", "REFERENCE", "NAME", "PHASE", "DESIRED", "TRIGGERS", "FAILURE"}; !slices.Equal(got, want) {
			t.Errorf("services list header = %q, want %q", got, want)
		}
		if row := rowWith(table, 1, "web"); !slices.Equal(row[2:], []string{"Web", "running", "running", "postEnvironmentStart", "-"}) {
			t.Errorf("services list row of web = %q", row)
		}
		row := rowWith(s.mustRun(t, adminToken, "tasks", "list", "--environment", envID), 1, "test")
		if row == nil || row[3] != "build,web" {
			t.Errorf("tasks list row of test = %q, want it to depend on build,web", row)
		}
	})

	var execID string
	t.Run("TaskStartWait", func(t *testing.T) {
		out := s.mustRun(t, adminToken, "tasks", "start", "--environment", envID, "test", "--wait")
		first := strings.SplitN(out, "\n", 2)[0]
		execID = uuidRe.FindString(first)
		if execID == "" {
			t.Fatalf("no execution ID in the first line:\n%s", out)
		}
		// The plan first: build and web together, then test.
		if !regexp.MustCompile(`of task test started: 3 steps: (task build \+ service web|service web \+ task build) -> task test$`).MatchString(first) {
			t.Errorf("tasks start --wait: first line %q, want the plan", first)
		}
		// Then each step as it runs and finishes, with the time since the
		// start; build takes a second, so it is seen running.
		for _, want := range []string{"running    task build", "succeeded  service web"} {
			if !strings.Contains(out, want) {
				t.Errorf("tasks start --wait output lacks %q:\n%s", want, out)
			}
		}
		requireLines(t, "tasks start --wait", out, "running    task build", "succeeded  task build", "succeeded  task test",
			"Execution "+execID+" succeeded in ", "(3 of 3 steps finished)")
		if !regexp.MustCompile(`(?m)^ +\d+\.\ds  running    task build$`).MatchString(out) {
			t.Errorf("progress lines carry no elapsed time:\n%s", out)
		}
	})

	t.Run("TaskLogs", func(t *testing.T) {
		out := s.mustRun(t, adminToken, "tasks", "logs", execID)
		requireLines(t, "tasks logs", out, "=== task build ===", "built "+marker, "=== task test ===", "tests ok")
		if strings.Contains(out, "=== step ") {
			t.Errorf("tasks logs labels a step by its ID:\n%s", out)
		}
		// A finished execution has nothing to stop, and stop says so.
		if out := s.mustRun(t, adminToken, "executions", "stop", execID); !strings.Contains(out, "Execution "+execID+" already succeeded") ||
			!strings.Contains(out, "nothing to stop") {
			t.Errorf("executions stop of a succeeded execution: %q", out)
		}
		got := s.mustRun(t, adminToken, "executions", "get", execID)
		requireLines(t, "executions get", got, "ID:", execID, "Task:", "task test", "Phase:", "succeeded",
			"GROUP", "task build", "succeeded", "artifact=app.bin", "task test", "succeeded")
		row := tableRow(t, s.mustRun(t, adminToken, "executions", "list", "--environment", envID), execID)
		if got, want := row[1:5], []string{"test", "succeeded", "manual", "3/3"}; !slices.Equal(got, want) {
			t.Errorf("executions list row %q, want %q after the ID", row, want)
		}
	})

	t.Run("TaskLogsFollow", func(t *testing.T) {
		out := s.mustRun(t, adminToken, "tasks", "start", "--environment", envID, "ticker")
		id := uuidRe.FindString(out)
		if id == "" {
			t.Fatalf("tasks start printed no execution ID:\n%s", out)
		}
		// -f returns when the execution ends, with all of its output.
		logs := s.mustRun(t, adminToken, "tasks", "logs", "-f", id)
		requireLines(t, "tasks logs -f", logs, "tick 1", "tick 2", "tick 3", "tick 4", "tick 5")
	})

	t.Run("FailingTask", func(t *testing.T) {
		r := s.run(t, adminToken, "tasks", "start", "--environment", envID, "broken", "--wait")
		if r.Code != 1 {
			t.Fatalf("tasks start --wait of a failing task: exit %d, want 1; stdout:\n%s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
		}
		requireOneLine(t, "tasks start --wait of a failing task", r.Stderr, "failed", "task broken", "exit code 3")
		requireLines(t, "tasks start --wait of a failing task", r.Stdout, "failed     task broken: exit code 3", "failed in ")
		id := uuidRe.FindString(r.Stdout)
		if logs := s.mustRun(t, adminToken, "tasks", "logs", id); !strings.Contains(logs, "about to fail") {
			t.Errorf("log of the failed execution:\n%s", logs)
		}
		var list struct {
			TaskExecutions []struct {
				ID string `json:"id"`
			} `json:"taskExecutions"`
		}
		s.mustJSON(t, adminToken, &list, "executions", "list", "--environment", envID, "--phase", "failed")
		if len(list.TaskExecutions) != 1 || list.TaskExecutions[0].ID != id {
			t.Errorf("executions list --phase failed = %+v, want only %s", list.TaskExecutions, id)
		}
	})

	t.Run("Services", func(t *testing.T) {
		out := s.mustRun(t, adminToken, "services", "logs", "--environment", envID, "web")
		requireLines(t, "services logs", out, "web starting in ")
		if !processWithArg(marker + "-web") {
			t.Fatal("the web service's process does not run")
		}
		out = s.mustRun(t, adminToken, "services", "stop", "--environment", envID, "web", "--wait")
		requireLines(t, "services stop --wait", out, "stopped", "Service web is stopped")
		if processWithArg(marker + "-web") {
			t.Error("the web service's process outlived its stop")
		}
		if row := rowWith(s.mustRun(t, adminToken, "services", "list", "--environment", envID), 1, "web"); row == nil || row[3] != "stopped" {
			t.Errorf("services list row of web after stop = %q", row)
		}
		svcID := serviceID(t, s, envID, "web")
		out = s.mustRun(t, adminToken, "services", "start", svcID, "--wait")
		requireLines(t, "services start --wait", out, "running", "Service web is running")
	})

	t.Run("AutomationsUpdate", func(t *testing.T) {
		p := writeFile("update.yaml", `services:
  web:
    name: Web
    triggeredBy: [postEnvironmentStart]
    commands:
      start: |
        echo "web starting in $PWD"
        touch ready.flag
        exec -a `+marker+`-web sleep 1000
      ready: test -f ready.flag
tasks:
  build:
    name: Build v2
    command: echo "built again"
  lint:
    command: echo lint
`)
		out := s.mustRun(t, adminToken, "automations", "update", "-f", p, "--environment", envID)
		for _, want := range [][]string{{"service", "web", "unchanged"}, {"task", "build", "updated"}, {"task", "lint", "created"},
			{"task", "test", "removed"}, {"task", "ticker", "removed"}, {"task", "broken", "removed"}} {
			if !regexp.MustCompile(`(?m)^\s+` + want[0] + `\s+` + want[1] + `\s+` + want[2] + `$`).MatchString(out) {
				t.Errorf("automations update output lacks %q:\n%s", want, out)
			}
		}
		requireLines(t, "automations update", out, "1 created, 1 updated, 3 removed, 1 unchanged.")
		out = s.mustRun(t, adminToken, "automations", "update", "-f", p, "--environment", envID)
		requireLines(t, "automations update again", out, "3 unchanged.")

		// A bad file is refused locally and changes nothing.
		bad := writeFile("update-bad.yaml", "tasks:\n  lint:\n    comand: echo\n")
		r := s.run(t, adminToken, "automations", "update", "-f", bad, "--environment", envID)
		requireOneLineError(t, r, 2, "tasks.lint.comand", `"command"`)
		var tasks struct {
			Tasks []struct {
				Metadata struct {
					Reference string `json:"reference"`
				} `json:"metadata"`
			} `json:"tasks"`
		}
		s.mustJSON(t, adminToken, &tasks, "tasks", "list", "--environment", envID)
		var refs []string
		for _, tk := range tasks.Tasks {
			refs = append(refs, tk.Metadata.Reference)
		}
		slices.Sort(refs)
		if want := []string{"build", "lint"}; !slices.Equal(refs, want) {
			t.Errorf("tasks after the refused update: %q, want %q", refs, want)
		}
	})

	// The repository's file, edited in the workspace, is applied again only
	// when asked: `automations reload`.
	t.Run("AutomationsReload", func(t *testing.T) {
		edited := `tasks:
  build:
    name: Build v2
    command: echo "built again"
  lint:
    command: echo lint
  reloaded:
    command: echo reloaded
`
		if err := os.WriteFile(filepath.Join(workspace, ".runyard", "automations.yaml"), []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		out := s.mustRun(t, adminToken, "automations", "reload", envID)
		requireLines(t, "automations reload", out, "Reload of the automations file of environment "+envID+" requested (request 2)")
		deadline := time.Now().Add(60 * time.Second)
		for {
			var tasks struct {
				Tasks []struct {
					Metadata struct {
						Reference string `json:"reference"`
					} `json:"metadata"`
				} `json:"tasks"`
			}
			s.mustJSON(t, adminToken, &tasks, "tasks", "list", "--environment", envID)
			var refs []string
			for _, tk := range tasks.Tasks {
				refs = append(refs, tk.Metadata.Reference)
			}
			slices.Sort(refs)
			if slices.Equal(refs, []string{"build", "lint", "reloaded"}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("tasks after the reload: %q, want build, lint, reloaded", refs)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The file lacks web now: it came from a file, so it goes.
		for deadline := time.Now().Add(60 * time.Second); rowWith(s.mustRun(t, adminToken, "services", "list", "--environment", envID), 1, "web") != nil; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("web, which the reloaded file lacks, is still listed")
			}
		}
		requireOneLineError(t, s.run(t, adminToken, "automations", "reload"), 2, "ENVIRONMENT")
		requireOneLineError(t, s.run(t, adminToken, "automations", "reload", "nope"), 3, `environment "nope" not found`)
		requireOneLineError(t, s.run(t, adminToken, "automations", "reload", "00000000-0000-4000-8000-000000000000"), 3, "not found")
	})

	t.Run("Errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
			code int
			want []string
		}{
			{"ErrUnknownEnvironment", []string{"environments", "get", "00000000-0000-4000-8000-000000000000"}, 3, []string{"not found"}},
			{"ErrUnknownEnvironmentName", []string{"environments", "get", "nope"}, 3, []string{`environment "nope" not found`}},
			{"ErrUnknownTaskRef", []string{"tasks", "start", "--environment", envID, "nope"}, 3, []string{`"nope"`, "not found"}},
			{"ErrUnknownServiceRef", []string{"services", "start", "--environment", envID, "nope"}, 3, []string{`"nope"`, "not found"}},
			{"ErrServiceNoArg", []string{"services", "stop"}, 2, []string{"SERVICE"}},
			{"ErrUnknownRunner", []string{"environments", "create", "--runner", "00000000-0000-4000-8000-000000000000"}, 3, []string{"runner"}},
			{"ErrClassAndRunner", []string{"environments", "create", "--runner", runnerID, "--class", "x"}, 2, []string{"class", "runner"}},
			{"ErrBranchWithoutGit", []string{"environments", "create", "--branch", "main"}, 2, []string{"--branch", "--git"}},
			{"ErrGitAndContextURL", []string{"environments", "create", "--git", repo, "--context-url", repo}, 2, []string{"git", "context-url"}},
			{"ErrBadContextURL", []string{"environments", "create", "--runner", runnerID, "--context-url", "https://github.com/org"}, 2, []string{"--context-url: must name a repository"}},
			{"ErrShortTimeout", []string{"environments", "create", "--runner", runnerID, "--inactivity-timeout", "10m"}, 2, []string{"--inactivity-timeout: must be at least 30m"}},
			{"ErrUpdateNoEnvironment", []string{"automations", "update", "-f", "x.yaml"}, 2, []string{"environment"}},
			{"ErrBadPhase", []string{"executions", "list", "--phase", "sleeping"}, 2, []string{"--phase", "sleeping"}},
			{"ErrBadToken", []string{"--token", "ryd_wrong", "environments", "list"}, 5, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				requireOneLineError(t, s.run(t, adminToken, tc.args...), tc.code, tc.want...)
			})
		}
	})

	t.Run("StopAndDelete", func(t *testing.T) {
		out := s.mustRun(t, adminToken, "environments", "stop", envID, "--wait")
		requireLines(t, "environments stop --wait", out, "stopped", "Environment "+envID+" is stopped (")
		if processWithArg(marker + "-web") {
			t.Error("the web service's process outlived the environment's stop")
		}
		out = s.mustRun(t, adminToken, "environments", "delete", "--yes", envID, "--wait")
		requireLines(t, "environments delete --wait", out, "Environment "+envID+" deleted (")
		requireOneLineError(t, s.run(t, adminToken, "environments", "get", envID), 3, "not found")
		if _, err := os.Stat(workspace); !os.IsNotExist(err) {
			t.Errorf("the workspace %s of the deleted environment: %v, want it removed", workspace, err)
		}
	})
}

// serviceID returns the ID of the service ref of environment envID.
func serviceID(t *testing.T, s *serverProc, envID, ref string) string {
	t.Helper()
	var list struct {
		Services []struct {
			ID       string `json:"id"`
			Metadata struct {
				Reference string `json:"reference"`
			} `json:"metadata"`
		} `json:"services"`
	}
	s.mustJSON(t, adminToken, &list, "services", "list", "--environment", envID, "--reference", ref)
	if len(list.Services) != 1 {
		t.Fatalf("services named %s: %+v", ref, list.Services)
	}
	return list.Services[0].ID
}
