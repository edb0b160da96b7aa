package main

// Tests of how the CLI names objects: by name (a service's or task's
// reference), full ID, a unique ID prefix, or a runner's numeric id, in
// positional arguments and flags alike; ambiguous names list the
// candidates; and shell completion offers the same names and IDs.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCLI_Names(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			testCLINames(t, b.databaseURL(t))
		})
	}
}

// namesFixture holds the objects of one names test server.
type namesFixture struct {
	s                          *serverProc
	alpha, beta                runnerJSON
	alphaNum                   int64
	solo, dup1, dup2           string // environments
	soloWeb, soloBuild, dupWeb string
	execution, pod, secret     string
	tokenSolo                  string
	tokenDup                   [2]string
}

func setupNames(t *testing.T, dbURL string) *namesFixture {
	t.Helper()
	f := &namesFixture{s: startServer(t, serverConfig{DatabaseURL: dbURL, Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})}
	s := f.s
	f.alpha = createRunner(t, s, "names-alpha", "linux-host")
	f.beta = createRunner(t, s, "names-beta", "linux-host")
	var rest struct {
		Runners []struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		}
	}
	restCall(t, s, "GET", "/runners", "", 200, &rest)
	for _, r := range rest.Runners {
		if r.Name == "names-alpha" {
			f.alphaNum = r.ID
		}
	}
	if f.alphaNum == 0 {
		t.Fatalf("REST runners %+v lack names-alpha", rest.Runners)
	}

	env := func(name string) string {
		var got struct{ Environment struct{ ID string } }
		s.mustJSON(t, adminToken, &got, "environments", "create", "--runner", f.alpha.RunnerID, "--name", name)
		return got.Environment.ID
	}
	f.solo, f.dup1, f.dup2 = env("names-solo"), env("names-dup"), env("names-dup")
	file := filepathJoinTemp(t, "automations.yaml", "services:\n  web:\n    commands:\n      start: sleep 60\ntasks:\n  build:\n    command: echo built\n")
	for _, e := range []string{f.solo, f.dup1, f.dup2} {
		s.mustRun(t, adminToken, "automations", "update", "-f", file, "--environment", e)
	}
	ids := func(args ...string) []string {
		return strings.Fields(s.mustRun(t, adminToken, args...))
	}
	f.soloWeb = ids("services", "list", "--environment", f.solo, "-o", "jsonpath={.services[*].id}")[0]
	f.dupWeb = ids("services", "list", "--environment", f.dup1, "-o", "jsonpath={.services[*].id}")[0]
	f.soloBuild = ids("tasks", "list", "--environment", f.solo, "-o", "jsonpath={.tasks[*].id}")[0]
	var x struct{ TaskExecution struct{ ID string } }
	s.mustJSON(t, adminToken, &x, "tasks", "start", f.soloBuild)
	f.execution = x.TaskExecution.ID

	s.mustRun(t, adminToken, "agents", "create", "--id", "names-agent", "--name", "Names agent", "--", "sh", "-c", "sleep 60")
	var pod struct{ Pod struct{ Key string } }
	s.mustJSON(t, adminToken, &pod, "pods", "create", "--agent", "names-agent", "--prompt", "hi")
	f.pod = pod.Pod.Key

	var sec struct{ Secret struct{ ID string } }
	s.mustJSON(t, adminToken, &sec, "secrets", "create", "--name", "NAMES_SECRET", "--env-var", "--value", "v1")
	f.secret = sec.Secret.ID

	tok := func(name string) string {
		var got struct{ Token struct{ TokenID string } }
		s.mustJSON(t, adminToken, &got, "tokens", "create", "--name", name, "--scopes", "runners:read")
		return got.Token.TokenID
	}
	f.tokenSolo = tok("names-ci")
	f.tokenDup = [2]string{tok("names-dup-key"), tok("names-dup-key")}
	return f
}

func filepathJoinTemp(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func testCLINames(t *testing.T, dbURL string) {
	f := setupNames(t, dbURL)
	s := f.s
	num := strconv.FormatInt(f.alphaNum, 10)
	for _, tc := range []struct {
		name string
		args []string
		code int
		// want are in stdout on success, in the one stderr line on
		// failure.
		want []string
	}{
		// Runners: positional.
		{"RunnerByName", []string{"runners", "get", "names-alpha", "-o", "jsonpath={.runner.runnerId}"}, 0, []string{f.alpha.RunnerID}},
		{"RunnerByID", []string{"runners", "get", f.alpha.RunnerID, "-o", "jsonpath={.runner.name}"}, 0, []string{"names-alpha"}},
		{"RunnerByPrefix", []string{"runners", "get", f.beta.RunnerID[:8], "-o", "jsonpath={.runner.name}"}, 0, []string{"names-beta"}},
		{"RunnerByUpperPrefix", []string{"runners", "get", strings.ToUpper(f.beta.RunnerID[:8]), "-o", "jsonpath={.runner.name}"}, 0, []string{"names-beta"}},
		{"RunnerByNumber", []string{"runners", "get", num, "-o", "jsonpath={.runner.runnerId}"}, 0, []string{f.alpha.RunnerID}},
		{"RunnerGetShowsBothIDs", []string{"runners", "get", "names-alpha"}, 0, []string{"ID:", f.alpha.RunnerID, "Numeric ID:", num}},
		{"RunnerWideShowsNumber", []string{"runners", "list", "-o", "wide"}, 0, []string{"NUMBER", num}},
		{"ErrRunnerNotFound", []string{"runners", "get", "names-gamma"}, 3, []string{`runner "names-gamma" not found`, "runyard runners list"}},
		{"ErrRunnerShortPrefix", []string{"runners", "get", f.alpha.RunnerID[:3]}, 3, []string{"at least 4 characters"}},
		{"ErrRunnerUnknownNumber", []string{"runners", "get", "999999"}, 3, []string{`runner "999999" not found`}},
		// Runners: flags, the Connect API's UUID and the REST API's number.
		{"RunnerFlagByName", []string{"environments", "list", "--runner", "names-alpha", "-o", "jsonpath={.environments[*].id}"}, 0, []string{f.solo, f.dup1}},
		{"RunnerFlagByNumber", []string{"environments", "list", "--runner", num, "-o", "jsonpath={.environments[*].id}"}, 0, []string{f.solo}},
		{"ErrRunnerFlagNotFound", []string{"environments", "list", "--runner", "names-alpha,nope-runner"}, 3, []string{`--runner: runner "nope-runner" not found`}},
		{"PodsRunnerByName", []string{"pods", "list", "--runner", "names-beta", "-o", "json"}, 0, []string{`"total": 0`}},
		{"PodsRunnerByUUID", []string{"pods", "list", "--runner", f.beta.RunnerID, "-o", "json"}, 0, []string{`"total": 0`}},
		{"ErrPodsRunnerOffline", []string{"pods", "create", "--agent", "names-agent", "--prompt", "x", "--runner", f.alpha.RunnerID[:6]}, 7, []string{"runner " + num + " (names-alpha)", "offline"}},

		// Environments.
		{"EnvByName", []string{"environments", "get", "names-solo", "-o", "jsonpath={.environment.id}"}, 0, []string{f.solo}},
		{"EnvByPrefix", []string{"environments", "get", f.dup2[:9], "-o", "jsonpath={.environment.id}"}, 0, []string{f.dup2}},
		{"ErrEnvAmbiguous", []string{"environments", "get", "names-dup"}, 2, []string{`environment "names-dup" is ambiguous`, "2 environments", f.dup1, f.dup2}},
		{"ErrEnvNotFound", []string{"environments", "stop", "names-nope"}, 3, []string{`environment "names-nope" not found`}},
		{"EnvFlag", []string{"services", "list", "--environment", "names-solo", "-o", "jsonpath={.services[*].id}"}, 0, []string{f.soloWeb}},
		{"ErrEnvFlagAmbiguous", []string{"tasks", "list", "--environment", "names-dup"}, 2, []string{`--environment: environment "names-dup" is ambiguous`}},

		// Services and tasks: by reference in an environment, or alone
		// when unique; by ID prefix.
		{"ServiceByRefInEnv", []string{"services", "stop", "web", "--environment", "names-solo"}, 0, []string{f.soloWeb}},
		{"ServiceByPrefix", []string{"services", "stop", f.dupWeb[:8]}, 0, []string{f.dupWeb}},
		{"ErrServiceAmbiguous", []string{"services", "stop", "web"}, 2, []string{`service "web" is ambiguous`, "3 services", f.soloWeb, f.dupWeb}},
		{"ErrServiceNotInEnv", []string{"services", "stop", "db", "--environment", f.solo}, 3, []string{`service "db" not found in environment ` + f.solo}},
		{"TaskByRefInEnvPrefix", []string{"tasks", "start", "build", "--environment", f.solo[:8], "-o", "jsonpath={.taskExecution.metadata.taskId}"}, 0, []string{f.soloBuild}},
		{"TaskFlag", []string{"executions", "list", "--environment", "names-solo", "--task", "build", "-o", "jsonpath={.taskExecutions[*].metadata.taskId}"}, 0, []string{f.soloBuild}},
		{"ErrTaskAmbiguous", []string{"tasks", "start", "build"}, 2, []string{`task "build" is ambiguous`}},

		// Executions, pods, agent types, secrets, tokens.
		{"ExecutionByPrefix", []string{"executions", "get", f.execution[:6], "-o", "jsonpath={.taskExecution.id}"}, 0, []string{f.execution}},
		{"ErrExecutionNotFound", []string{"executions", "get", "ffffffff"}, 3, []string{`execution "ffffffff" not found`}},
		{"PodByKey", []string{"pods", "get", f.pod, "-o", "jsonpath={.pod.key}"}, 0, []string{f.pod}},
		{"PodByPrefix", []string{"pods", "get", f.pod[:9], "-o", "jsonpath={.pod.key}"}, 0, []string{f.pod}},
		{"PodByPrefixWithoutPod", []string{"pods", "get", strings.TrimPrefix(f.pod, "pod-")[:5], "-o", "jsonpath={.pod.key}"}, 0, []string{f.pod}},
		{"ErrPodNotFound", []string{"pods", "logs", "pod-zzzz"}, 3, []string{`pod "pod-zzzz" not found`}},
		{"AgentByName", []string{"agents", "get", "Names agent", "-o", "jsonpath={.agent.id}"}, 0, []string{"names-agent"}},
		{"AgentByPrefix", []string{"agents", "get", "names-ag", "-o", "jsonpath={.agent.id}"}, 0, []string{"names-agent"}},
		{"SecretByName", []string{"secrets", "update", "NAMES_SECRET", "--value", "v2"}, 0, []string{"Secret " + f.secret + " updated"}},
		{"SecretByPrefix", []string{"secrets", "update", f.secret[:7], "--value", "v3"}, 0, []string{"Secret " + f.secret + " updated"}},
		{"ServiceAccountFlag", []string{"secrets", "list", "--service-account", "names-ci", "-o", "json"}, 0, []string{`"secrets": []`}},
		{"ErrTokenAmbiguous", []string{"tokens", "revoke", "names-dup-key", "--yes"}, 2, []string{`token "names-dup-key" is ambiguous`, f.tokenDup[0], f.tokenDup[1]}},
		{"TokenByName", []string{"tokens", "revoke", "names-ci", "--yes"}, 0, []string{"Token " + f.tokenSolo + " revoked"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.run(t, adminToken, tc.args...)
			if tc.code != 0 {
				requireOneLineError(t, r, tc.code, tc.want...)
				return
			}
			if r.Code != 0 || r.Stderr != "" {
				t.Fatalf("runyard %s: exit %d, stderr %q", strings.Join(tc.args, " "), r.Code, r.Stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Stdout, w) {
					t.Errorf("runyard %s:\n%s\nwant it to contain %q", strings.Join(tc.args, " "), r.Stdout, w)
				}
			}
		})
	}

	// A destructive command confirms with the object resolved: the
	// refusal without --yes names its full ID.
	r := runCLIInput(t, "", nil, "y\n", "--server", s.URL, "--token", adminToken, "runners", "delete", "names-beta")
	requireOneLineError(t, r, 2, "runyard runners delete "+f.beta.RunnerID, "--yes")

	t.Run("Completion", func(t *testing.T) {
		testNamesCompletion(t, f)
	})
}

// complete runs the binary's hidden __complete as the shells' scripts do
// and returns the candidates (without descriptions).
func complete(t *testing.T, s *serverProc, words ...string) []string {
	t.Helper()
	r := runCLI(t, "", []string{"RUNYARD_SERVER=" + s.URL, "RUNYARD_TOKEN=" + adminToken}, append([]string{"__complete"}, words...)...)
	if r.Code != 0 {
		t.Fatalf("__complete %q: exit %d, stderr %q", words, r.Code, r.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("__complete %q: no directive line: %q", words, r.Stdout)
	}
	if d := lines[len(lines)-1]; d != ":4" {
		t.Errorf("__complete %q: directive %s, want :4 (no file completion)", words, d)
	}
	var out []string
	for _, l := range lines[:len(lines)-1] {
		v, _, _ := strings.Cut(l, "\t")
		out = append(out, v)
	}
	return out
}

func testNamesCompletion(t *testing.T, f *namesFixture) {
	s := f.s
	num := strconv.FormatInt(f.alphaNum, 10)
	for _, tc := range []struct {
		name    string
		words   []string
		want    []string
		notWant []string
	}{
		{"RunnerArg", []string{"runners", "get", ""}, []string{"names-alpha", "names-beta", f.alpha.RunnerID, f.beta.RunnerID}, nil},
		{"RunnerArgPrefix", []string{"runners", "delete", "names-a"}, []string{"names-alpha"}, []string{"names-beta", f.beta.RunnerID}},
		{"RunnerNumberFlag", []string{"pods", "create", "--runner", ""}, []string{"names-alpha", num}, []string{f.alpha.RunnerID}},
		{"RunnerSliceFlag", []string{"environments", "list", "--runner", "names-alpha,names-b"}, []string{"names-alpha,names-beta"}, nil},
		{"EnvironmentArg", []string{"environments", "get", "names-"}, []string{"names-solo", "names-dup"}, nil},
		{"ServiceInEnvironment", []string{"services", "stop", "--environment", "names-solo", ""}, []string{"web", f.soloWeb}, []string{f.dupWeb}},
		{"TaskFlag", []string{"executions", "list", "--task", ""}, []string{"build", f.soloBuild}, nil},
		{"ExecutionArg", []string{"tasks", "logs", ""}, []string{f.execution}, nil},
		{"PodArg", []string{"pods", "attach", "pod-"}, []string{f.pod}, nil},
		{"AgentArg", []string{"agents", "delete", "names"}, []string{"names-agent"}, []string{"claude-code"}},
		{"SecretArg", []string{"secrets", "delete", ""}, []string{"NAMES_SECRET", f.secret}, nil},
		{"TokenArg", []string{"tokens", "revoke", "names-dup"}, []string{"names-dup-key"}, []string{"names-ci"}},
		{"OnlyFirstArg", []string{"runners", "get", "names-alpha", ""}, nil, []string{"names-beta"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := complete(t, s, tc.words...)
			for _, w := range tc.want {
				if !containsStr(got, w) {
					t.Errorf("__complete %q = %q, want %q among them", tc.words, got, w)
				}
			}
			for _, w := range tc.notWant {
				if containsStr(got, w) {
					t.Errorf("__complete %q = %q, want no %q", tc.words, got, w)
				}
			}
		})
	}

	// The shells' own scripts: each is generated, and bash's, sourced in
	// a real bash, completes a runner's name from the server.
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := runCLI(t, "", nil, "completion", sh)
		if r.Code != 0 || !strings.Contains(r.Stdout, "__complete") {
			t.Errorf("completion %s: exit %d, no __complete in the script", sh, r.Code)
		}
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	// The script calls the runyard on PATH, as after an install. The
	// bash-completion package's word splitter is stubbed where it is
	// missing (the script needs only cur, prev, words and cword).
	script := `declare -F _get_comp_words_by_ref >/dev/null || _get_comp_words_by_ref() {
  cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
}
source <(runyard completion bash)
COMP_LINE="runyard runners get names-al"; COMP_POINT=${#COMP_LINE}; COMP_WORDS=(runyard runners get names-al); COMP_CWORD=3
__start_runyard 2>/dev/null
printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command("bash", "--norc", "-c", script)
	cmd.Dir, cmd.Env = emptyDir, processEnv("RUNYARD_SERVER="+s.URL, "RUNYARD_TOKEN="+adminToken,
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "names-alpha" {
		t.Errorf("bash completion of `runyard runners get names-al`: %v, output %q; want names-alpha", err, out)
	}

	// zsh and fish, interactive in a terminal (tmux), complete the line
	// when Tab is pressed, as a person would see it.
	for _, sh := range []string{"zsh", "fish"} {
		t.Run(sh, func(t *testing.T) { testShellCompletes(t, s, sh) })
	}
}

// testShellCompletes starts shell interactively in tmux with runyard's
// generated completion script loaded as its documentation says, types
// `runyard runners get names-al`, presses Tab, and waits for the line to
// read names-alpha: the script asked the server through the runyard on
// PATH.
func testShellCompletes(t *testing.T, s *serverProc, shell string) {
	if _, err := exec.LookPath(shell); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (.ci/run installs it)", shell)
		}
		t.Skipf("%s is not installed", shell)
	}
	home := t.TempDir()
	env := fmt.Sprintf("export HOME=%q RUNYARD_SERVER=%q RUNYARD_TOKEN=%q PATH=%q XDG_CONFIG_HOME=%q XDG_DATA_HOME=%q XDG_CACHE_HOME=%q\n",
		home, s.URL, adminToken, filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		filepath.Join(home, "config"), filepath.Join(home, "data"), filepath.Join(home, "cache"))
	var script string
	switch shell {
	case "zsh":
		rc := "PS1='zsh> '\nautoload -U compinit && compinit -u -d \"$ZDOTDIR/.zcompdump\"\nsource <(runyard completion zsh)\n"
		mustWrite(t, filepath.Join(home, ".zshrc"), rc)
		script = env + fmt.Sprintf("export ZDOTDIR=%q\nexec zsh -i\n", home)
	case "fish":
		rc := "set -g fish_greeting ''\nfunction fish_prompt; echo -n 'fish> '; end\nrunyard completion fish | source\n"
		mustWrite(t, filepath.Join(home, "config", "fish", "config.fish"), rc)
		script = env + "exec fish -i\n"
	}
	sc := startTmux(t, 120, 20, script)
	// capture-pane drops the prompt's trailing space.
	sc.see("the "+shell+" prompt", shell+">")
	sc.keys("runyard runners get names-al")
	sc.see("the typed line", "runyard runners get names-al")
	sc.keys("Tab")
	sc.see(shell+" completing the runner's name", shell+"> runyard runners get names-alpha")
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
