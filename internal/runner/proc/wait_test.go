package proc

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// threads returns the number of OS threads of this process.
func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// TestWaitExited starts many children that wait for their stdin to close,
// waits for all of them at once, and checks that the waits hold no OS
// thread each, that each returns only after its child exited, and that the
// child is left unreaped (a zombie) for its supervisor.
func TestWaitExited(t *testing.T) {
	const n = 200
	before := threads(t)
	type child struct {
		cmd   *exec.Cmd
		stdin *os.File
		done  chan error
	}
	children := make([]*child, n)
	for i := range children {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", "read x; exit 3")
		cmd.Stdin = r
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r.Close()
		c := &child{cmd: cmd, stdin: w, done: make(chan error, 1)}
		children[i] = c
		go func() { c.done <- WaitExited(cmd.Process.Pid) }()
	}
	t.Cleanup(func() {
		for _, c := range children {
			c.stdin.Close()
			c.cmd.Wait()
		}
	})
	// Every wait is under way (or about to be) while all children run.
	for _, c := range children {
		select {
		case err := <-c.done:
			t.Fatalf("WaitExited returned %v while its child runs", err)
		default:
		}
	}
	if got := threads(t); got-before > n/4 {
		t.Errorf("%d threads with %d waits under way (%d before): a thread per wait", got, n, before)
	}
	var wg sync.WaitGroup
	for _, c := range children {
		c.stdin.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := <-c.done; err != nil {
				t.Errorf("WaitExited: %v", err)
			}
			stat, err := os.ReadFile("/proc/" + strconv.Itoa(c.cmd.Process.Pid) + "/stat")
			if err != nil || !bytes.Contains(stat, []byte(") Z ")) {
				t.Errorf("child %d after WaitExited: %q, %v; want a zombie, not reaped", c.cmd.Process.Pid, stat, err)
			}
			err = c.cmd.Wait()
			if st, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || st.ExitStatus() != 3 {
				t.Errorf("child exit: %v, want exit status 3 reaped by its owner", err)
			}
		}()
	}
	wg.Wait()
}
