package holder

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/runner/proc"
)

func shell(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	return p
}

// output collects what hooks receive.
type output struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	size int64
}

func (o *output) hooks() Hooks {
	return Hooks{
		Output: func(b []byte, reset bool) {
			o.mu.Lock()
			defer o.mu.Unlock()
			if reset {
				o.buf.Reset()
			}
			o.buf.Write(b)
		},
		Grew: func(n int64) {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.size = n
		},
	}
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitDone(t *testing.T, h *Handle) Exit {
	t.Helper()
	select {
	case <-h.Done():
		return h.Exit()
	case <-time.After(30 * time.Second):
		t.Fatal("the command did not end")
		return Exit{}
	}
}

func logSpec(t *testing.T, dir, script string) Spec {
	sh := shell(t)
	return Spec{
		Path: sh, Args: []string{sh, "-c", script}, Env: []string{"PATH=" + os.Getenv("PATH")},
		Mode: ModeLog, LogPath: filepath.Join(dir, "run.log"), LogCap: 1 << 20,
	}
}

func TestHolder_Log(t *testing.T) {
	for _, tc := range []struct {
		name     string
		script   string
		mask     []string
		cap      int64
		wantCode int
		wantHow  string
		wantLog  string
	}{
		{"ExitCode", `echo hello; exit 3`, nil, 0, 3, "exit code 3", "hello\n"},
		{"SecretMasked", `printf 'token=hunter2hunter2\n'; printf 'split=hunter2'; sleep 0.05; printf 'hunter2\n'`, []string{"hunter2hunter2"}, 0, 0, "exit code 0", "token=***\nsplit=***\n"},
		{"Capped", `for i in $(seq 1 100); do echo 0123456789; done`, nil, 50, 0, "exit code 0", "0123456789\n0123456789\n0123456789\n0123456789\n012345"},
		{"Killed", `kill -KILL $$`, nil, 0, 137, "killed by SIGKILL", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sp := logSpec(t, dir, tc.script)
			sp.Mask = tc.mask
			if tc.cap > 0 {
				sp.LogCap = tc.cap
			}
			var o output
			h, err := Start(filepath.Join(dir, "h"), sp, o.hooks())
			if err != nil {
				t.Fatal(err)
			}
			x := waitDone(t, h)
			if x.Code != tc.wantCode || x.How != tc.wantHow {
				t.Errorf("exit = %d %q, want %d %q", x.Code, x.How, tc.wantCode, tc.wantHow)
			}
			b, _ := os.ReadFile(sp.LogPath)
			if !strings.HasPrefix(string(b), tc.wantLog) {
				t.Errorf("log = %q, want it to start with %q", b, tc.wantLog)
			}
			if tc.cap > 0 && !strings.Contains(string(b), "reached its cap") {
				t.Errorf("log = %q: no truncation marker", b)
			}
			if rec, err := ReadExit(h.Dir()); err != nil || rec.Code != tc.wantCode {
				t.Errorf("exit.json = %+v, %v", rec, err)
			}
		})
	}
}

// TestHolder_Adopt detaches from a running command and adopts it again, as
// a restarted daemon does: same pids, the log goes on, signals reach it.
func TestHolder_Adopt(t *testing.T) {
	dir := t.TempDir()
	sp := logSpec(t, dir, `trap 'echo got TERM; exit 7' TERM; echo started; while :; do sleep 0.05; done`)
	var o output
	h, err := Start(filepath.Join(dir, "h"), sp, o.hooks())
	if err != nil {
		t.Fatal(err)
	}
	rec := h.Record()
	waitFor(t, "the first line", func() bool { b, _ := os.ReadFile(sp.LogPath); return strings.Contains(string(b), "started") })
	h.Detach()

	var o2 output
	h2, err := Adopt(filepath.Join(dir, "h"), o2.hooks())
	if err != nil {
		t.Fatal(err)
	}
	if got := h2.Record(); got.Command != rec.Command || got.Holder != rec.Holder {
		t.Fatalf("adopted record %+v, want %+v", got, rec)
	}
	if st, err := proc.ReadStat(rec.Command.Session); err != nil || st.StartTicks != rec.Command.StartTicks {
		t.Fatalf("the command is gone after the daemon detached: %v", err)
	}
	if err := h2.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	x := waitDone(t, h2)
	if x.Code != 7 {
		t.Errorf("exit = %+v, want code 7", x)
	}
	b, _ := os.ReadFile(sp.LogPath)
	if !strings.Contains(string(b), "got TERM") {
		t.Errorf("log = %q", b)
	}
	// Adopting an ended holder gives its exit at once.
	h3, err := Adopt(filepath.Join(dir, "h"), Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if x := waitDone(t, h3); x.Code != 7 {
		t.Errorf("adopted exit = %+v", x)
	}
}

// TestHolder_Died: a holder killed by SIGKILL takes its command with it, and
// adopting it reports ErrDied and leaves no process of the session.
func TestHolder_Died(t *testing.T) {
	dir := t.TempDir()
	sp := logSpec(t, dir, `sleep 300 & echo started; wait`)
	h, err := Start(filepath.Join(dir, "h"), sp, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	rec := h.Record()
	waitFor(t, "the first line", func() bool { b, _ := os.ReadFile(sp.LogPath); return strings.Contains(string(b), "started") })
	h.Detach()
	if err := syscall.Kill(rec.Holder.Session, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the holder to die", func() bool { return !rec.Alive() })
	h2, err := Adopt(filepath.Join(dir, "h"), Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if x := waitDone(t, h2); x.How != ErrDied.Error() {
		t.Errorf("exit = %+v, want %q", x, ErrDied)
	}
	waitFor(t, "the session to be gone", func() bool {
		return len(proc.SessionMembers(rec.Command.Session, rec.Command.StartTicks, 0)) == 0
	})
}

func TestHolder_Terminal(t *testing.T) {
	dir := t.TempDir()
	sh := shell(t)
	sp := Spec{
		Path: sh, Args: []string{sh, "--norc", "--noprofile", "-i"},
		Env:  []string{"PATH=" + os.Getenv("PATH"), "PS1=$ ", "TERM=dumb"},
		Mode: ModeTerminal, Cols: 100, Rows: 30, Scrollback: 4096,
		Input: "echo first-$((40+2))\n", Mask: []string{"sekrit-value"},
	}
	var o output
	h, err := Start(filepath.Join(dir, "h"), sp, o.hooks())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "typed input's output", func() bool { return strings.Contains(o.String(), "first-42") })
	if err := h.Resize(91, 17); err != nil {
		t.Fatal(err)
	}
	if err := h.Input([]byte("stty size; echo sekrit-value\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new size", func() bool { return strings.Contains(o.String(), "17 91") })
	waitFor(t, "the masked echo", func() bool { return strings.Contains(o.String(), "\n***") })
	h.Detach()

	// The scrollback survives the daemon.
	var o2 output
	h2, err := Adopt(filepath.Join(dir, "h"), o2.hooks())
	if err != nil {
		t.Fatal(err)
	}
	if s := o2.String(); !strings.Contains(s, "first-42") || !strings.Contains(s, "17 91") {
		t.Errorf("scrollback after adopting = %q", s)
	}
	if strings.Contains(o.String()+o2.String(), "sekrit-value") {
		t.Errorf("the secret's value reached the output unmasked: %q", o.String())
	}
	if err := h2.Input([]byte("exit 5\n")); err != nil {
		t.Fatal(err)
	}
	if x := waitDone(t, h2); x.Code != 5 {
		t.Errorf("exit = %+v", x)
	}
	out, err := os.ReadFile(filepath.Join(dir, "h", OutputFile))
	if err != nil || !strings.Contains(string(out), "first-42") {
		t.Errorf("saved output = %q, %v", out, err)
	}
}

func TestHolder_StartErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{"NoSuchBinary", Spec{Path: "/nonexistent/cmd", Args: []string{"cmd"}, Mode: ModeLog, LogPath: filepath.Join(dir, "l")}, "no such file"},
		{"BadMode", Spec{Path: "/bin/true", Args: []string{"true"}, Mode: "video"}, `holder mode "video"`},
		{"NoCommand", Spec{Mode: ModeLog}, "names no command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Start(filepath.Join(dir, tc.name), tc.spec, Hooks{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestKillUnder(t *testing.T) {
	dir := t.TempDir()
	sp := logSpec(t, dir, `sleep 300 & echo started; wait`)
	h, err := Start(filepath.Join(dir, "state", "h"), sp, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	rec := h.Record()
	h.Detach()
	if n := KillUnder(filepath.Join(dir, "elsewhere")); n != 0 {
		t.Errorf("KillUnder of another directory killed %d holders", n)
	}
	if n := KillUnder(filepath.Join(dir, "state")); n != 1 {
		t.Errorf("KillUnder killed %d holders, want 1", n)
	}
	waitFor(t, "the holder and its command's session to be gone", func() bool {
		return !rec.Alive() && len(proc.SessionMembers(rec.Command.Session, rec.Command.StartTicks, 0)) == 0
	})
}

// TestHolder_AdoptWhileStarting: a daemon that dies right after handing a
// holder its command, before the holder recorded it, leaves a holder that
// the next daemon must find. Adopt waits for it to record the command and
// adopts it (the command runs once, and the handle knows it); a holder
// still silent after adoptWait is killed before it runs anything. Neither
// leaves a command running that no daemon knows of, as Adopt did when it
// took a directory without holder.json for a holder that had died.
func TestHolder_AdoptWhileStarting(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resume bool
	}{{"Resumes", true}, {"StaysSilent", false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			hdir, ran := filepath.Join(dir, "h"), filepath.Join(dir, "ran")
			sp := logSpec(t, dir, `echo $$ >> `+ran+`; exec sleep 300`)
			sp.HolderDir, sp.Dir = hdir, dir
			if err := os.MkdirAll(hdir, 0o700); err != nil {
				t.Fatal(err)
			}
			// The daemon's side of Start up to the hand-over, with the
			// holder stopped so that it cannot record the command yet;
			// then the daemon dies: its end of the status pipe closes.
			spare, err := spawn()
			if err != nil {
				t.Fatal(err)
			}
			pid := spare.cmd.Process.Pid
			t.Cleanup(func() {
				syscall.Kill(pid, syscall.SIGKILL)
				KillUnder(dir)
			})
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			if err := handOver(hdir, spare, sp); err != nil {
				t.Fatal(err)
			}
			spare.statusR.Close()
			if tc.resume {
				time.AfterFunc(200*time.Millisecond, func() { syscall.Kill(pid, syscall.SIGCONT) })
			} else {
				defer func(w time.Duration) { adoptWait = w }(adoptWait)
				adoptWait = 300 * time.Millisecond
			}

			h, err := Adopt(hdir, Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.resume {
				if x := waitDone(t, h); x.How != ErrDied.Error() {
					t.Errorf("exit = %+v, want %q", x, ErrDied)
				}
				waitFor(t, "the silent holder to be gone", func() bool { return syscall.Kill(pid, 0) != nil })
				if _, err := os.Stat(ran); !os.IsNotExist(err) {
					t.Errorf("the command of a holder killed before it recorded it ran: %v", err)
				}
				return
			}
			if h.isDone() {
				t.Fatalf("Adopt reported the command ended (%+v) while its holder was starting it", h.Exit())
			}
			rec := h.Record()
			waitFor(t, "the adopted command to run", func() bool {
				b, _ := os.ReadFile(ran)
				return strings.TrimSpace(string(b)) == strconv.Itoa(rec.Command.Session)
			})
			if err := h.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if x := waitDone(t, h); x.Signal != int(syscall.SIGKILL) {
				t.Errorf("exit = %+v, want killed by SIGKILL", x)
			}
			if b, _ := os.ReadFile(ran); strings.Count(string(b), "\n") != 1 {
				t.Errorf("the command ran %d times, want once", strings.Count(string(b), "\n"))
			}
		})
	}
}

// TestHolder_AdoptUnreachable: a live holder whose socket does not answer
// yet is adopted all the same (the handle connects once it can), not
// given up: a daemon that gave it up would leave its command running
// unwatched, or start it a second time.
func TestHolder_AdoptUnreachable(t *testing.T) {
	dir := t.TempDir()
	sp := logSpec(t, dir, `trap 'echo got TERM; exit 7' TERM; echo started; while :; do sleep 0.05; done`)
	hdir := filepath.Join(dir, "h")
	h, err := Start(hdir, sp, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	rec := h.Record()
	h.Detach()
	sock, away := filepath.Join(hdir, sockFile), filepath.Join(hdir, "sock.away")
	if err := os.Rename(sock, away); err != nil {
		t.Fatal(err)
	}
	var o output
	h2, err := Adopt(hdir, o.hooks())
	if err != nil {
		t.Fatalf("Adopt of a live holder that does not answer: %v", err)
	}
	if h2.isDone() || h2.Record().Command != rec.Command {
		t.Fatalf("adopted %+v (done %v), want the running command %+v", h2.Record(), h2.isDone(), rec.Command)
	}
	if err := os.Rename(away, sock); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the handle to connect", func() bool { return h2.Resize(80, 24) == nil })
	if err := h2.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if x := waitDone(t, h2); x.Code != 7 {
		t.Errorf("exit = %+v, want code 7", x)
	}
}

// TestHolder_StartGreetsWithLogSize: the first size a daemon hears of a log
// that already holds lines (the runner's own, written before the command
// starts) is the log's size, not zero, and the handle talks to the holder
// over the connection it was started with, so a missing DIR/sock does not
// leave it deaf.
func TestHolder_StartGreetsWithLogSize(t *testing.T) {
	dir := t.TempDir()
	sp := logSpec(t, dir, "")
	if err := os.WriteFile(sp.LogPath, []byte("[runyard] header\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		sizes []int64
	)
	// The command waits for its input on a FIFO, so nothing is written to
	// the log before the daemon heard the first size.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sp.Args = []string{sp.Path, "-c", `read line < "$0"; echo "$line"`, fifo}
	h, err := Start(filepath.Join(dir, "h"), sp, Hooks{Grew: func(n int64) {
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	first := append([]int64(nil), sizes...)
	mu.Unlock()
	if len(first) == 0 || first[0] != int64(len("[runyard] header\n")) {
		t.Errorf("sizes heard by the time Start returned = %v, want the log's size %d first", first, len("[runyard] header\n"))
	}
	// Remove the socket: the handle keeps its first connection.
	if err := os.Remove(filepath.Join(h.Dir(), sockFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fifo, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitDone(t, h)
	want := int64(len("[runyard] header\nhello\n"))
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) == 0 || sizes[len(sizes)-1] != want {
		t.Errorf("sizes = %v, want it to end at %d (heard over the first connection)", sizes, want)
	}
}

// TestHolder_LogFastWriter writes a log as fast as yes can, so that the
// holder gathers it in large reads (logPipe.gather), with a secret on every
// line: the log must be whole and every secret masked, also where one was
// split between two reads.
func TestHolder_LogFastWriter(t *testing.T) {
	const line, secret, n = "abc hunter2hunter2 def\n", "hunter2hunter2", 8_000_000
	dir := t.TempDir()
	sp := logSpec(t, dir, `yes '`+strings.TrimSuffix(line, "\n")+`' | head -c `+strconv.Itoa(n)+`; sleep 0.05; echo end`)
	sp.Mask, sp.LogCap = []string{secret}, 16<<20
	var o output
	h, err := Start(filepath.Join(dir, "h"), sp, o.hooks())
	if err != nil {
		t.Fatal(err)
	}
	if x := waitDone(t, h); x.Code != 0 {
		t.Fatalf("exit = %+v", x)
	}
	want := strings.ReplaceAll(strings.Repeat(line, n/len(line)+1)[:n], secret, "***") + "end\n"
	b, err := os.ReadFile(sp.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		i := 0
		for i < len(b) && i < len(want) && b[i] == want[i] {
			i++
		}
		t.Fatalf("log of %d bytes, want %d; first difference at %d: %q, want %q", len(b), len(want), i,
			b[i:min(len(b), i+40)], want[i:min(len(want), i+40)])
	}
	waitFor(t, "the last size", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.size == int64(len(want))
	})
}

// TestHolder_LogStrayWriter ends a command whose stray process (in a
// session of its own, so not killed with the command's) keeps the output
// open: the holder stops reading after drainTimeout and records the exit.
func TestHolder_LogStrayWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the holder's drain timeout")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "stray.pid")
	sp := logSpec(t, dir, `setsid sh -c 'echo $$ > `+pidFile+`; exec sleep 60' & echo started; while [ ! -s `+pidFile+` ]; do sleep 0.01; done`)
	var o output
	h, err := Start(filepath.Join(dir, "h"), sp, o.hooks())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	if x := waitDone(t, h); x.Code != 0 {
		t.Fatalf("exit = %+v", x)
	}
	if b, _ := os.ReadFile(sp.LogPath); string(b) != "started\n" {
		t.Errorf("log = %q, want %q", b, "started\n")
	}
}

// startRecycled starts script under a holder in dir with Recyclable set
// and waits for its exit.
func startRecycled(t *testing.T, dir, script string) (*Handle, Exit) {
	t.Helper()
	var o output
	hooks := o.hooks()
	hooks.Recyclable = true
	h, err := Start(filepath.Join(dir, "h"), logSpec(t, dir, script), hooks)
	if err != nil {
		t.Fatal(err)
	}
	return h, waitDone(t, h)
}

// recycle removes h's directory and hands its holder back, as a task step
// does once its end is recorded; it returns the holder's pid.
func recycle(t *testing.T, h *Handle) int {
	t.Helper()
	pid := h.Record().Holder.Session
	if err := Remove(h.Dir()); err != nil {
		t.Fatal(err)
	}
	h.Recycle()
	return pid
}

// TestHolder_Recycle runs commands one after another in one holder
// process: each in its own directory, with its own log, exit and record,
// as if each had a holder of its own; a failed start ends the holder.
func TestHolder_Recycle(t *testing.T) {
	h1, x1 := startRecycled(t, t.TempDir(), `echo one; exit 3`)
	if x1.Code != 3 {
		t.Fatalf("first exit = %+v", x1)
	}
	pid := recycle(t, h1)

	dir2 := t.TempDir()
	h2, x2 := startRecycled(t, dir2, `echo two $PWD; exit 0`)
	if got := h2.Record().Holder.Session; got != pid {
		t.Fatalf("second command ran under holder %d, want the recycled %d", got, pid)
	}
	if x2.Code != 0 {
		t.Errorf("second exit = %+v", x2)
	}
	wd, _ := os.Getwd()
	if b, _ := os.ReadFile(filepath.Join(dir2, "run.log")); string(b) != "two "+wd+"\n" {
		// The command's directory is the spec's (none: the daemon's),
		// never the holder's previous directory.
		t.Errorf("second log = %q, want the daemon's directory %s", b, wd)
	}
	if x, err := ReadExit(h2.Dir()); err != nil || x.Code != 0 {
		t.Errorf("second exit.json = %+v, %v", x, err)
	}
	if rec, err := ReadRecord(h2.Dir()); err != nil || rec.Holder.Session != pid || rec.Command.Session == h1.Record().Command.Session {
		t.Errorf("second holder.json = %+v, %v", rec, err)
	}
	// A daemon that restarted finds the second command ended, whatever
	// the holder does next.
	if h, err := Adopt(h2.Dir(), Hooks{}); err != nil || waitDone(t, h).Code != 0 {
		t.Errorf("adopt the second directory: %v", err)
	}

	// A start that fails is reported like a new holder's, and that holder
	// ends.
	recycle(t, h2)
	dir3 := t.TempDir()
	_, err := Start(filepath.Join(dir3, "h"), Spec{Path: "/nonexistent/cmd", Args: []string{"cmd"}, Mode: ModeLog, LogPath: filepath.Join(dir3, "l")}, Hooks{Recyclable: true})
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v, want the command's start error", err)
	}
	waitFor(t, "the recycled holder to end after its failed start", func() bool {
		st, err := proc.ReadStat(pid)
		return err != nil || st.State == 'Z'
	})
}

// TestHolder_NotRecycled: a terminal's holder, and a holder started
// without Recyclable, end with their command; the next Start gets another.
func TestHolder_NotRecycled(t *testing.T) {
	sh := shell(t)
	for _, tc := range []struct {
		name  string
		spec  func(dir string) Spec
		hooks Hooks
	}{
		{"Terminal", func(string) Spec {
			return Spec{Path: sh, Args: []string{sh, "-c", "exit 0"}, Env: []string{}, Mode: ModeTerminal}
		}, Hooks{Recyclable: true}},
		{"NotRecyclable", func(dir string) Spec { return logSpec(t, dir, "exit 0") }, Hooks{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			h, err := Start(filepath.Join(dir, "h"), tc.spec(dir), tc.hooks)
			if err != nil {
				t.Fatal(err)
			}
			waitDone(t, h)
			pid := recycle(t, h)
			waitFor(t, "its holder to end", func() bool {
				st, err := proc.ReadStat(pid)
				return err != nil || st.State == 'Z'
			})
			h2, x := startRecycled(t, t.TempDir(), "exit 0")
			if x.Code != 0 || h2.Record().Holder.Session == pid {
				t.Errorf("next start: exit %+v under holder %d (the ended one: %d)", x, h2.Record().Holder.Session, pid)
			}
		})
	}
}

// TestHolder_RecycleMany runs many short commands in a row in recycled
// holders, as a long chain of task steps does: every exit must be the
// command's own. (A previous run's reaper that outlived its run used to
// reap the next command's leader now and then, so exec.Cmd lost the exit
// status and the holder died with the command.)
func TestHolder_RecycleMany(t *testing.T) {
	runs := map[int]int{} // holder pid -> commands it ran
	fds := func(pid int) int {
		entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		return len(entries)
	}
	var busiest, first int
	for i := range 150 {
		h, x := startRecycled(t, t.TempDir(), fmt.Sprintf("exit %d", i%3))
		if x.Code != i%3 {
			t.Fatalf("run %d: exit %+v, want code %d", i, x, i%3)
		}
		pid := h.Record().Holder.Session
		if runs[pid]++; runs[pid] > runs[busiest] {
			busiest = pid
		}
		if runs[pid] == 2 {
			first = fds(pid)
		}
		recycle(t, h)
	}
	// Each Start takes the newest recycled holder: a handful of holders
	// (spares filled in the background) ran all of them.
	if len(runs) > 10 {
		t.Errorf("%d holder processes ran 150 commands: they are not recycled", len(runs))
	}
	t.Logf("holder %d ran %d of the 150 commands; descriptors: %d after its first, %d now", busiest, runs[busiest], first, fds(busiest))
	// A run leaves nothing open behind it in the holder.
	if n := fds(busiest); runs[busiest] > 100 && n > first+2 {
		t.Errorf("holder %d has %d descriptors open after %d commands (%d after its first)", busiest, n, runs[busiest], first)
	}
}

// TestHolder_NoThreadPerHolder: the daemon reaps its holders without an
// OS thread blocked in waitid for each (a runner with 200 services had
// 211 threads).
func TestHolder_NoThreadPerHolder(t *testing.T) {
	threads := func() int {
		b, _ := os.ReadFile("/proc/self/status")
		for _, l := range strings.Split(string(b), "\n") {
			if n, ok := strings.CutPrefix(l, "Threads:"); ok {
				v, _ := strconv.Atoi(strings.TrimSpace(n))
				return v
			}
		}
		t.Fatal("no Threads line in /proc/self/status")
		return 0
	}
	// The pool's first fill and the runtime's own threads come first.
	warm, err := Start(filepath.Join(t.TempDir(), "h"), logSpec(t, t.TempDir(), "exit 0"), Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, warm)
	before := threads()
	const n = 40
	var hs []*Handle
	for range n {
		dir := t.TempDir()
		h, err := Start(filepath.Join(dir, "h"), logSpec(t, dir, "exec sleep 60"), Hooks{})
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	after := threads()
	for _, h := range hs {
		_ = h.Signal(syscall.SIGKILL)
		waitDone(t, h)
	}
	if after-before >= n/2 {
		t.Errorf("%d holders running: %d threads, %d before", n, after, before)
	}
}
