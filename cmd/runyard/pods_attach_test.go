package main

import (
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestPodsCLI_AttachAndLogs drives `runyard pods attach` in a real terminal
// (a PTY): raw mode, typing, resizing and the detach key; then attach with
// piped input, `pods logs` and `pods logs -f`, against a real server and a
// real runner process.
func TestPodsCLI_AttachAndLogs(t *testing.T) {
	s := startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
	script := `echo "prompt: $1"; while read line; do case "$line" in size) stty size;; quit) exit 3;; *) echo "got: $line";; esac; done`
	s.mustRun(t, adminToken, "agents", "create", "--id", "echo-agent", "--name", "Echo", "--", "sh", "-c", script, "echo-agent", "{{prompt}}")
	_, exchange := registerRunner(t, s, "attach-host")
	startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "state"), "--stop-grace", "5s")

	var created struct{ Pod cliPod }
	s.mustJSON(t, adminToken, &created, "pods", "create", "--agent", "echo-agent", "--prompt", "hello terminal")
	key := created.Pod.Key
	eventually(t, "the pod runs", func() bool {
		var res struct{ Pod cliPod }
		s.mustJSON(t, adminToken, &res, "pods", "get", key)
		return res.Pod.Status == "running"
	})

	// Interactive: the CLI in a PTY of 80x24.
	cmd := exec.Command(bin, "--server", s.URL, "--token", adminToken, "pods", "attach", key)
	cmd.Dir, cmd.Env = emptyDir, processEnv()
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 80, Rows: 24})
	if err != nil {
		t.Fatalf("start attach in a pty: %v", err)
	}
	defer ptmx.Close()
	screen := &syncBuffer{}
	go io.Copy(screen, ptmx)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	see := func(what string) {
		t.Helper()
		eventually(t, fmt.Sprintf("the terminal shows %q", what), func() bool { return strings.Contains(screen.String(), what) })
	}
	see("attached to pod " + key + "; detach with Ctrl-]")
	see("prompt: hello terminal")
	// The PTY is raw: the Enter key (\r) reaches the agent's terminal, which
	// makes it a newline.
	ptmx.Write([]byte("typed\r"))
	see("got: typed")
	// The pod's terminal follows this one's size: the CLI gets SIGWINCH.
	// The resize and the typing travel separately, so ask until it shows.
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: 132, Rows: 43}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pod's terminal is 132x43", func() bool {
		ptmx.Write([]byte("size\r"))
		time.Sleep(100 * time.Millisecond)
		return strings.Contains(screen.String(), "43 132")
	})
	ptmx.Write([]byte("after\r"))
	see("got: after")
	// The detach key ends attach with exit 0; the pod runs on.
	ptmx.Write([]byte{0x1d})
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("attach after the detach key: %v\n%s", err, screen.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("attach did not end on the detach key:\n%s", screen.String())
	}
	see("detached from pod " + key)
	var after struct{ Pod cliPod }
	s.mustJSON(t, adminToken, &after, "pods", "get", key)
	if after.Pod.Status != "running" {
		t.Fatalf("after detaching the pod is %s", after.Pod.Status)
	}

	// logs -f follows from now until the pod ends.
	follow := exec.Command(bin, "--server", s.URL, "--token", adminToken, "pods", "logs", "-f", key)
	follow.Dir, follow.Env = emptyDir, processEnv()
	followOut := &syncBuffer{}
	follow.Stdout, follow.Stderr = followOut, followOut
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	followed := make(chan error, 1)
	go func() { followed <- follow.Wait() }()
	t.Cleanup(func() { follow.Process.Kill() })
	eventually(t, "logs -f prints the scrollback", func() bool { return strings.Contains(followOut.String(), "got: after") })

	// A key with pods:read only: attach to type is refused with a hint,
	// --readonly watches and says so.
	var readKey struct{ Secret string }
	s.mustJSON(t, adminToken, &readKey, "tokens", "create", "--name", "watcher", "--scopes", "pods:read")
	requireOneLineError(t, s.run(t, readKey.Secret, "pods", "attach", key), 6, "--readonly", "needs only pods:read")
	watch := exec.Command(bin, "--server", s.URL, "--token", readKey.Secret, "pods", "attach", "--readonly", key)
	watch.Dir, watch.Env = emptyDir, processEnv()
	watchOut, watchErr := &syncBuffer{}, &syncBuffer{}
	watch.Stdout, watch.Stderr = watchOut, watchErr
	watch.Stdin = strings.NewReader("ignored input\n")
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	watched := make(chan error, 1)
	go func() { watched <- watch.Wait() }()
	t.Cleanup(func() { watch.Process.Kill() })
	eventually(t, "attach --readonly says it is read-only", func() bool {
		return strings.Contains(watchErr.String(), "watching pod "+key+" read-only") && strings.Contains(watchOut.String(), "got: after")
	})

	// Piped input: sent as it is; attach shows the output until the pod
	// ends, and exits 1 because it failed, saying so in one clean line.
	piped := exec.Command(bin, "--server", s.URL, "--token", adminToken, "pods", "attach", key)
	piped.Dir, piped.Env = emptyDir, processEnv()
	piped.Stdin = strings.NewReader("from a pipe\nquit\n")
	var out, errOut strings.Builder
	piped.Stdout, piped.Stderr = &out, &errOut
	err = piped.Run()
	ended := "runyard: pod " + key + " failed: exit code 3\n"
	if code := piped.ProcessState.ExitCode(); code != 1 || !strings.Contains(out.String(), "got: from a pipe") || errOut.String() != ended {
		t.Fatalf("piped attach: exit %d (%v)\nstdout: %s\nstderr: %q, want %q", code, err, out.String(), errOut.String(), ended)
	}
	// logs -f ends with the pod as attach does; so does the read-only
	// attach, which never sent its input.
	for _, w := range []struct {
		what   string
		done   chan error
		proc   *exec.Cmd
		output *syncBuffer
	}{{"logs -f", followed, follow, followOut}, {"attach --readonly", watched, watch, watchErr}} {
		select {
		case <-w.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not end with the pod:\n%s", w.what, w.output)
		}
		if code := w.proc.ProcessState.ExitCode(); code != 1 || !strings.HasSuffix(w.output.String(), ended) {
			t.Errorf("%s after the pod failed: exit %d, output %q; want 1 and %q", w.what, code, w.output, ended)
		}
	}
	if strings.Contains(followOut.String(), "got: ignored input") {
		t.Errorf("the read-only attach sent its input:\n%s", followOut)
	}
	if !strings.Contains(followOut.String(), "got: from a pipe") {
		t.Errorf("logs -f missed the output after it started:\n%s", followOut.String())
	}

	// logs prints the ended pod's output; the CLI's errors are one line.
	logs := s.mustRun(t, adminToken, "pods", "logs", key)
	for _, want := range []string{"prompt: hello terminal", "got: typed", "43 132", "got: from a pipe"} {
		if !strings.Contains(logs, want) {
			t.Errorf("pods logs lacks %q:\n%s", want, logs)
		}
	}
	for _, tc := range []struct {
		args    []string
		code    int
		mention string
	}{
		{[]string{"pods", "logs", "pod-000000000000"}, 3, "pod-000000000000"},
		{[]string{"pods", "attach", "pod-000000000000"}, 3, "pod-000000000000"},
		{[]string{"pods", "attach", "--detach-key", "f1", key}, 2, "--detach-key"},
	} {
		requireOneLineError(t, s.run(t, adminToken, tc.args...), tc.code, tc.mention)
	}
}
