package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cliPod is a pod as `runyard pods ... -o json` prints it: the REST API's
// JSON.
type cliPod struct {
	Key           string   `json:"key"`
	Status        string   `json:"status"`
	DesiredStatus string   `json:"desired_status"`
	AgentTypeID   string   `json:"agent_type_id"`
	InitialPrompt string   `json:"initial_prompt"`
	RunnerID      *int64   `json:"runner_id"`
	Labels        []string `json:"labels"`
	Reason        string   `json:"reason"`
}

type cliPodList struct {
	Pods  []cliPod `json:"pods"`
	Total int      `json:"total"`
}

// podKeys returns the keys of ps in order.
func podKeys(ps []cliPod) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Key
	}
	return out
}

// tableRow returns the fields of the line of table whose first column is
// first, failing the test when there is none.
func tableRow(t *testing.T, table, first string) []string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == first {
			return f
		}
	}
	t.Fatalf("no row %q in:\n%s", first, table)
	return nil
}

// TestPodsCLI_Lifecycle drives `runyard agents` and `runyard pods` against a
// real server and a real runner process: a custom agent type whose command
// is a small sh script, pods created, listed, filtered and terminated, and
// the CLI's errors.
func TestPodsCLI_Lifecycle(t *testing.T) {
	s := startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
	out := t.TempDir()
	// The script records its environment and prompt in a file named after
	// its pod, then waits. Its $0 (marker) and $1 (the prompt) show in its
	// command line for as long as it runs.
	marker := fmt.Sprintf("runyard-cli-pod-%d", time.Now().UnixNano())
	script := `printf '%s|%s|%s\n' "$GREETING" "$POD_VAR" "$1" > "$OUT/$RUNYARD_POD_KEY"; while :; do sleep 1; done`

	t.Run("AgentsCreate", func(t *testing.T) {
		got := s.mustRun(t, adminToken, "agents", "create", "--id", "script-agent", "--name", "Script agent",
			"--env", "GREETING=hello", "--env", "OUT="+out, "--", "sh", "-c", script, marker, "{{prompt}}")
		if row := tableRow(t, got, "script-agent"); !slices.Contains(row, "custom") {
			t.Fatalf("agents create row = %q, want a custom type", row)
		}
	})
	t.Run("AgentsList", func(t *testing.T) {
		table := s.mustRun(t, adminToken, "agents", "list")
		for _, id := range []string{"claude-code", "codex", "gemini-cli", "aider", "opencode"} {
			if row := tableRow(t, table, id); !slices.Contains(row, "built-in") {
				t.Errorf("agents list row %q, want built-in", row)
			}
		}
		if row := tableRow(t, table, "script-agent"); !slices.Contains(row, "custom") {
			t.Errorf("agents list row %q, want custom", row)
		}
		var list struct {
			Builtin []struct {
				ID string `json:"id"`
			} `json:"builtin_agents"`
			Custom []struct {
				ID      string            `json:"id"`
				Command []string          `json:"command"`
				Env     map[string]string `json:"env"`
			} `json:"custom_agents"`
		}
		s.mustJSON(t, adminToken, &list, "agents", "list")
		if got := len(list.Builtin); got != 5 {
			t.Errorf("builtin_agents has %d types, want 5", got)
		}
		if len(list.Custom) != 1 {
			t.Fatalf("custom_agents = %+v, want script-agent only", list.Custom)
		}
		c := list.Custom[0]
		if want := []string{"sh", "-c", script, marker, "{{prompt}}"}; c.ID != "script-agent" || !slices.Equal(c.Command, want) {
			t.Errorf("custom agent = %s %q, want script-agent %q", c.ID, c.Command, want)
		}
		if got, want := c.Env["GREETING"], "hello"; got != want {
			t.Errorf("custom agent env GREETING = %q, want %q", got, want)
		}
	})

	_, exchange := registerRunner(t, s, "cli-pod-host")
	startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "state"),
		"--labels", "gpu", "--stop-grace", "5s")

	getPod := func(key string) cliPod {
		var res struct{ Pod cliPod }
		s.mustJSON(t, adminToken, &res, "pods", "get", key)
		return res.Pod
	}
	createPod := func(args ...string) cliPod {
		var res struct{ Pod cliPod }
		s.mustJSON(t, adminToken, &res, append([]string{"pods", "create", "--agent", "script-agent"}, args...)...)
		return res.Pod
	}

	prompt1 := "first pod " + marker
	p1 := createPod("--prompt", prompt1, "--label", "gpu", "--env", "POD_VAR=from-pod")
	if p1.Key == "" || p1.AgentTypeID != "script-agent" || p1.InitialPrompt != prompt1 || !slices.Equal(p1.Labels, []string{"gpu"}) {
		t.Fatalf("pods create -o json = %+v", p1)
	}
	eventually(t, "the first pod is running", func() bool { return getPod(p1.Key).Status == "running" })
	runner := getPod(p1.Key).RunnerID
	if runner == nil {
		t.Fatal("a running pod has no runner_id")
	}
	runnerID := strconv.FormatInt(*runner, 10)

	t.Run("GetTable", func(t *testing.T) {
		got := s.mustRun(t, adminToken, "pods", "get", p1.Key)
		for _, want := range []string{"Key:", p1.Key, "Status:", "running", "Agent:", "script-agent", "Runner:", runnerID, "Labels:", "gpu"} {
			if !strings.Contains(got, want) {
				t.Errorf("pods get output lacks %q:\n%s", want, got)
			}
		}
	})
	t.Run("ProcessGotPromptAndEnv", func(t *testing.T) {
		file := filepath.Join(out, p1.Key)
		var b []byte
		eventually(t, "the script wrote its file", func() bool {
			var err error
			b, err = os.ReadFile(file)
			return err == nil && strings.HasSuffix(string(b), "\n")
		})
		if got, want := string(b), "hello|from-pod|"+prompt1+"\n"; got != want {
			t.Fatalf("the pod's process wrote %q, want %q", got, want)
		}
	})

	// A second pod, pinned to the runner by its numeric id.
	prompt2 := "second pod " + marker
	p2 := createPod("--prompt", prompt2, "--runner", runnerID)
	eventually(t, "the second pod is running", func() bool { return getPod(p2.Key).Status == "running" })

	t.Run("ListTable", func(t *testing.T) {
		table := s.mustRun(t, adminToken, "pods", "list")
		if got, want := strings.Fields(strings.SplitN(table, "\n", 2)[0]), []string{"KEY", "STATUS", "AGENT", "RUNNER", "REASON", "CREATED"}; !slices.Equal(got, want) {
			t.Errorf("pods list header = %q, want %q", got, want)
		}
		for _, key := range []string{p1.Key, p2.Key} {
			row := tableRow(t, table, key)
			if got, want := row[1:4], []string{"running", "script-agent", runnerID}; !slices.Equal(got, want) {
				t.Errorf("pods list row %q, want %q after the key", row, want)
			}
		}
	})
	t.Run("ListJSON", func(t *testing.T) {
		var list cliPodList
		s.mustJSON(t, adminToken, &list, "pods", "list")
		// Newest first.
		if got, want := podKeys(list.Pods), []string{p2.Key, p1.Key}; !slices.Equal(got, want) || list.Total != 2 {
			t.Fatalf("pods list -o json = %q (total %d), want %q (total 2)", got, list.Total, want)
		}
		s.mustJSON(t, adminToken, &list, "pods", "list", "--limit", "1")
		if got, want := podKeys(list.Pods), []string{p2.Key}; !slices.Equal(got, want) || list.Total != 2 {
			t.Fatalf("pods list --limit 1 = %q (total %d), want %q (total 2)", got, list.Total, want)
		}
		s.mustJSON(t, adminToken, &list, "pods", "list", "--runner", runnerID)
		if got := len(list.Pods); got != 2 {
			t.Fatalf("pods list --runner %s has %d pods, want 2", runnerID, got)
		}
		s.mustJSON(t, adminToken, &list, "pods", "list", "--status", "pending")
		if len(list.Pods) != 0 || list.Total != 0 {
			t.Fatalf("pods list --status pending = %+v, want none", list)
		}
	})

	t.Run("Terminate", func(t *testing.T) {
		if !processWithArg(prompt1) {
			t.Fatal("the first pod's process is not running before terminate")
		}
		s.mustRun(t, adminToken, "pods", "terminate", "--yes", p1.Key)
		eventually(t, "the first pod is terminated", func() bool { return getPod(p1.Key).Status == "terminated" })
		eventually(t, "the first pod's process is gone", func() bool { return !processWithArg(prompt1) })
		if got := getPod(p2.Key).Status; got != "running" {
			t.Fatalf("the second pod is %s after the first was terminated, want running", got)
		}
		// A finished pod stays as it is.
		if got := s.mustRun(t, adminToken, "pods", "terminate", "--yes", p1.Key); !strings.Contains(got, "terminated") {
			t.Errorf("terminate of a terminated pod printed %q", got)
		}
	})
	t.Run("StatusFilter", func(t *testing.T) {
		var list cliPodList
		s.mustJSON(t, adminToken, &list, "pods", "list", "--status", "terminated")
		if got, want := podKeys(list.Pods), []string{p1.Key}; !slices.Equal(got, want) {
			t.Errorf("pods list --status terminated = %q, want %q", got, want)
		}
		s.mustJSON(t, adminToken, &list, "pods", "list", "--status", "running")
		if got, want := podKeys(list.Pods), []string{p2.Key}; !slices.Equal(got, want) {
			t.Errorf("pods list --status running = %q, want %q", got, want)
		}
		table := s.mustRun(t, adminToken, "pods", "list", "--status", "terminated")
		if row := tableRow(t, table, p1.Key); row[1] != "terminated" {
			t.Errorf("pods list --status terminated row = %q", row)
		}
		if strings.Contains(table, p2.Key) {
			t.Errorf("pods list --status terminated shows the running pod:\n%s", table)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
			code int
			want []string
		}{
			{"ErrUnknownAgent", []string{"pods", "create", "--agent", "no-such-agent", "--prompt", "hi"}, 2, []string{"--agent: unknown agent type", "no-such-agent"}},
			{"ErrUnknownPodGet", []string{"pods", "get", "pod-000000000000"}, 3, []string{"pod-000000000000", "not found"}},
			{"ErrUnknownPodTerminate", []string{"pods", "terminate", "--yes", "pod-000000000000"}, 3, []string{"not found"}},
			{"ErrEnvWithoutEquals", []string{"pods", "create", "--agent", "script-agent", "--prompt", "hi", "--env", "NOVALUE"}, 2, []string{"--env", "NOVALUE"}},
			{"ErrEnvEmptyName", []string{"pods", "create", "--agent", "script-agent", "--prompt", "hi", "--env", "=x"}, 2, []string{"--env"}},
			{"ErrEnvReserved", []string{"pods", "create", "--agent", "script-agent", "--prompt", "hi", "--env", "RUNYARD_POD_KEY=x"}, 2, []string{"RUNYARD_POD_KEY"}},
			{"ErrMissingPrompt", []string{"pods", "create", "--agent", "script-agent"}, 2, []string{"prompt"}},
			{"ErrBadStatus", []string{"pods", "list", "--status", "sleeping"}, 2, []string{"status", "sleeping"}},
			{"ErrNegativeLimit", []string{"pods", "list", "--limit", "-1"}, 2, []string{"--limit"}},
			{"ErrGetNoKey", []string{"pods", "get"}, 2, []string{"needs POD"}},
			{"ErrAgentNoCommand", []string{"agents", "create", "--id", "other", "--name", "Other"}, 2, []string{"--"}},
			{"ErrAgentExists", []string{"agents", "create", "--id", "script-agent", "--name", "Again", "--", "sh"}, 4, []string{"script-agent", "already exists"}},
			{"ErrOtherOrg", []string{"pods", "list", "--org", "elsewhere"}, 3, []string{"elsewhere"}},
			{"ErrBadToken", []string{"--token", "ryd_wrong", "pods", "list"}, 5, nil},
			{"ErrUnreachable", []string{"--server", "http://127.0.0.1:1", "agents", "list"}, 9, []string{"cannot reach"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := s.run(t, adminToken, tc.args...)
				requireOneLineError(t, r, tc.code, tc.want...)
			})
		}
	})
}

// TestAgentsCLI_Change drives `runyard agents get|update|delete` against a
// real server: only what is given changes, and the refusals are one line
// with the exit code of their kind.
func TestAgentsCLI_Change(t *testing.T) {
	s := startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
	s.mustRun(t, adminToken, "agents", "create", "--id", "my-agent", "--name", "Mine", "--env", "MODE=slow", "--", "my-agent", "{{prompt}}")

	type agent struct {
		ID      string            `json:"id"`
		Name    string            `json:"name"`
		Command []string          `json:"command"`
		Env     map[string]string `json:"env"`
		Builtin bool              `json:"builtin"`
	}
	get := func(id string) agent {
		var res struct{ Agent agent }
		s.mustJSON(t, adminToken, &res, "agents", "get", id)
		return res.Agent
	}
	steps := []struct {
		name string
		args []string
		want agent
	}{
		{"Name", []string{"--name", "Mine v2"}, agent{"my-agent", "Mine v2", []string{"my-agent", "{{prompt}}"}, map[string]string{"MODE": "slow"}, false}},
		{"Command", []string{"--", "my-agent", "--batch", "{{prompt}}"}, agent{"my-agent", "Mine v2", []string{"my-agent", "--batch", "{{prompt}}"}, map[string]string{"MODE": "slow"}, false}},
		{"Env", []string{"--env", "MODE=fast", "--env", "LEVEL=2"}, agent{"my-agent", "Mine v2", []string{"my-agent", "--batch", "{{prompt}}"}, map[string]string{"MODE": "fast", "LEVEL": "2"}, false}},
		{"ClearEnv", []string{"--clear-env"}, agent{"my-agent", "Mine v2", []string{"my-agent", "--batch", "{{prompt}}"}, map[string]string{}, false}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			out := s.mustRun(t, adminToken, append([]string{"agents", "update", "my-agent"}, st.args...)...)
			if row := tableRow(t, out, "my-agent"); !slices.Contains(row, "custom") {
				t.Errorf("agents update row = %q", row)
			}
			if got := get("my-agent"); !reflect.DeepEqual(got, st.want) {
				t.Errorf("after update %q: %+v, want %+v", st.args, got, st.want)
			}
		})
	}
	t.Run("GetBuiltin", func(t *testing.T) {
		if got := get("codex"); got.ID != "codex" || !got.Builtin {
			t.Errorf("agents get codex = %+v", got)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
			code int
			want []string
		}{
			{"ErrNothing", []string{"agents", "update", "my-agent"}, 2, []string{"nothing to change"}},
			{"ErrEnvAndClear", []string{"agents", "update", "my-agent", "--env", "A=1", "--clear-env"}, 2, []string{"--clear-env"}},
			{"ErrBuiltin", []string{"agents", "update", "codex", "--name", "Mine"}, 2, []string{"built-in"}},
			{"ErrUnknownUpdate", []string{"agents", "update", "no-such-agent", "--name", "X"}, 3, []string{"no-such-agent"}},
			{"ErrUnknownGet", []string{"agents", "get", "no-such-agent"}, 3, []string{"no-such-agent"}},
			{"ErrDeleteBuiltin", []string{"agents", "delete", "--yes", "claude-code"}, 2, []string{"built-in"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				requireOneLineError(t, s.run(t, adminToken, tc.args...), tc.code, tc.want...)
			})
		}
		if got := get("my-agent"); got.Name != "Mine v2" {
			t.Errorf("after refused updates: %+v", got)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		if out := s.mustRun(t, adminToken, "agents", "delete", "--yes", "my-agent"); !strings.Contains(out, "my-agent") {
			t.Errorf("agents delete said %q", out)
		}
		requireOneLineError(t, s.run(t, adminToken, "agents", "get", "my-agent"), 3, "my-agent")
		requireOneLineError(t, s.run(t, adminToken, "agents", "delete", "--yes", "my-agent"), 3, "my-agent")
	})
}
