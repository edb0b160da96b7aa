package pods

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/runyard/runyard/internal/runner/proc"
	"github.com/runyard/runyard/internal/runner/statefile"

	"github.com/creack/pty"
)

// state is where a pod is in its life (see the diagram in doc.go). Only the
// pod's own goroutine moves it.
type state int

const (
	stateRunning  state = iota + 1
	stateStopping       // SIGTERM sent, waiting for the leader to exit or StopGrace to pass
	stateKilling        // SIGKILL sent
	stateExited         // the leader exited: cleaning up
)

const (
	// attachBuffer is how many output chunks an attacher may fall behind
	// before it is disconnected.
	attachBuffer = 256
	// readBuffer is the most output read from the PTY at once.
	readBuffer = 32 << 10
	// drainTimeout bounds the wait for the PTY's last output once every
	// process of the session is gone. Only a process that left the session
	// but kept the terminal open holds it up.
	drainTimeout = 5 * time.Second
)

// pod is one pod and everything the manager holds for it.
type pod struct {
	m   *Manager
	key string
	dir string

	wake chan struct{} // a stop was requested; capacity 1

	mu         sync.Mutex
	ev         Event
	done       bool // the pod ended; ev is final
	stopping   bool // a stop was requested, with stopReason
	stopReason string
	force      bool   // SIGKILL now
	scroll     *ring  // nil for a pod that ended before this process: see saved
	saved      []byte // the output of an ended pod, read from its directory
	subs       map[*Attachment]struct{}
	ptmx       *os.File // nil once the pod ended
}

// process is a started pod process.
type process struct {
	cmd        *exec.Cmd
	ptmx       *os.File
	pid        int
	startTicks uint64
}

// endedPod is a pod that ended before this runner process held it: its
// output is what was saved when it ended.
func endedPod(m *Manager, key string, ev Event) *pod {
	dir := filepath.Join(m.dir, key)
	saved, err := os.ReadFile(filepath.Join(dir, outputFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.log.Warn("read saved pod output", "pod", key, "err", err)
	}
	return &pod{m: m, key: key, dir: dir, ev: ev, done: true, saved: saved, wake: make(chan struct{}, 1)}
}

// start starts the pod for s; m.mu is held. A pod that cannot start is
// returned ended (failed), with its exit record written, so it is not tried
// again. A pod whose exit record exists already (it ended, then left the
// desired set and memory, and came back in a stale snapshot) is returned as
// it ended.
func (m *Manager) start(s Spec) *pod {
	var prev Event
	if err := statefile.Read(filepath.Join(m.dir, s.Key, exitFile), &prev); err == nil {
		prev.Key = s.Key
		return endedPod(m, s.Key, prev)
	}
	p := &pod{
		m:      m,
		key:    s.Key,
		dir:    filepath.Join(m.dir, s.Key),
		wake:   make(chan struct{}, 1),
		scroll: newRing(m.cfg.ScrollbackBytes),
		subs:   map[*Attachment]struct{}{},
	}
	now := time.Now()
	pr, err := p.launch(s, now)
	if err != nil {
		ev := Event{Key: s.Key, Status: StatusFailed, ExitCode: -1, Reason: "start: " + err.Error(), StartedAt: now, FinishedAt: now}
		p.ev, p.done = ev, true
		if err := finish(p.dir, ev); err != nil {
			m.log.Error("record pod exit", "pod", s.Key, "err", err)
		}
		m.log.Warn("pod failed to start", "pod", s.Key, "err", err)
		m.events.Push(ev)
		return p
	}
	p.ptmx = pr.ptmx
	if s.Input != "" {
		// In its own goroutine: the write blocks while the agent has not
		// read what fills the terminal's input buffer.
		go func() {
			if _, err := pr.ptmx.Write([]byte(s.Input)); err != nil {
				m.log.Warn("type the pod's input", "pod", s.Key, "err", err)
			}
		}()
	}
	p.ev = Event{Key: s.Key, Status: StatusRunning, StartedAt: now}
	m.log.Info("pod started", "pod", s.Key, "pid", pr.pid)
	m.events.Push(p.ev)
	m.wg.Add(1)
	go p.run(pr)
	return p
}

// launch starts the pod's process in a new session on a new PTY and records
// its pid file.
func (p *pod) launch(s Spec, now time.Time) (*process, error) {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create pod dir: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("invalid spec: %w", err)
	}
	wd := s.Workdir
	if !filepath.IsAbs(wd) {
		wd = filepath.Join(p.dir, workDir, wd)
	}
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return nil, fmt.Errorf("create workdir: %w", err)
	}
	env := podEnv(s, wd)
	path, err := lookPath(s.Argv[0], env)
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{Path: path, Args: s.Argv, Env: env, Dir: wd}
	cols, rows := s.Cols, s.Rows
	if cols == 0 {
		cols = 80
	}
	if rows == 0 {
		rows = 24
	}
	ws := &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)}
	// The agent leads a new session and process group, with the PTY as its
	// controlling terminal (fd 0 in the child).
	blocking, err := pty.StartWithAttrs(cmd, ws, &syscall.SysProcAttr{Setsid: true, Setctty: true})
	if err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	abort := func(err error) (*process, error) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		blocking.Close()
		return nil, err
	}
	// The child is not reaped before cmd.Wait, so its stat is readable even
	// if it already exited.
	st, err := proc.ReadStat(pid)
	if err != nil {
		return abort(fmt.Errorf("read process start time: %w", err))
	}
	rec := pidRecord{Session: pid, StartTicks: st.StartTicks, BootID: p.m.bootID, StartedAt: now}
	if err := statefile.Write(filepath.Join(p.dir, pidFile), rec); err != nil {
		return abort(err)
	}
	ptmx, err := pollable(blocking)
	if err != nil {
		return abort(err)
	}
	return &process{cmd: cmd, ptmx: ptmx, pid: pid, startTicks: st.StartTicks}, nil
}

// pollable returns f (which creack/pty leaves in blocking mode) as a
// non-blocking file on Go's poller, so that closing it ends a pending Read
// or Write instead of leaving a thread stuck in the kernel.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, _, e := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		return nil, fmt.Errorf("dup pty: %w", e)
	}
	if err := syscall.SetNonblock(int(fd), true); err != nil {
		syscall.Close(int(fd))
		return nil, fmt.Errorf("pty: %w", err)
	}
	return os.NewFile(fd, "/dev/ptmx"), nil
}

// podEnv is the pod's environment: a minimal base, then s.Env.
func podEnv(s Spec, wd string) []string {
	base := map[string]string{
		"PATH":            os.Getenv("PATH"),
		"HOME":            os.Getenv("HOME"),
		"LANG":            os.Getenv("LANG"),
		"TERM":            "xterm-256color",
		"RUNYARD_POD_KEY": s.Key,
	}
	if base["PATH"] == "" {
		base["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	if base["HOME"] == "" {
		base["HOME"] = wd
	}
	if base["LANG"] == "" {
		base["LANG"] = "C.UTF-8"
	}
	for k, v := range s.Env {
		base[k] = v
	}
	env := make([]string, 0, len(base))
	for k, v := range base {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// lookPath finds name on the pod's PATH (not the runner's, should Spec.Env
// change it). A name with a slash is used as it is, relative to the workdir.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	var path string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		f := filepath.Join(dir, name)
		if fi, err := os.Stat(f); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return f, nil
		}
	}
	return "", fmt.Errorf("%q not found on PATH %s", name, path)
}

// run owns the pod's processes from start to end: it is the state machine of
// doc.go.
func (p *pod) run(pr *process) {
	defer p.m.wg.Done()
	readerDone := make(chan struct{})
	go p.read(pr.ptmx, readerDone)
	exited := make(chan struct{})
	go func() {
		if err := proc.WaitExited(pr.pid); err != nil {
			p.m.log.Error("wait for pod process", "pod", p.key, "err", err)
		}
		close(exited)
	}()

	signal := func(sig syscall.Signal) { proc.SignalSession(pr.pid, pr.startTicks, 0, sig) }
	st := stateRunning
	killed := false // SIGKILL was sent on a stop
	var grace <-chan time.Time
	for st != stateExited {
		select {
		case <-exited:
			st = stateExited
		case <-grace:
			grace = nil
			if st == stateStopping {
				st, killed = stateKilling, true
				p.m.log.Info("pod did not stop within the grace period: killing it", "pod", p.key, "grace", p.m.cfg.StopGrace)
				signal(syscall.SIGKILL)
			}
		case <-p.wake:
			p.mu.Lock()
			force := p.force
			p.mu.Unlock()
			if st == stateRunning {
				st = stateStopping
				signal(syscall.SIGTERM)
				t := time.NewTimer(p.m.cfg.StopGrace)
				defer t.Stop()
				grace = t.C
			}
			if force && st == stateStopping {
				st, killed = stateKilling, true
				signal(syscall.SIGKILL)
			}
		}
	}
	// The leader exited but is not reaped yet: its pid cannot be recycled
	// while the rest of its session is killed.
	proc.KillSession(pr.pid, pr.startTicks, pr.pid)
	_ = pr.cmd.Wait()
	select {
	case <-readerDone:
	case <-time.After(drainTimeout):
		p.m.log.Warn("pod terminal still open after its processes ended: closing it", "pod", p.key)
	}
	pr.ptmx.Close()
	<-readerDone

	ev := p.exitEvent(pr.cmd.ProcessState, killed)
	p.end(ev)
	// The output goes first: an exit record promises it is there.
	if err := os.WriteFile(filepath.Join(p.dir, outputFile), p.scrollback(), 0o600); err != nil {
		p.m.log.Error("save pod output", "pod", p.key, "err", err)
	}
	if err := finish(p.dir, ev); err != nil {
		p.m.log.Error("record pod exit", "pod", p.key, "err", err)
	}
	p.m.log.Info("pod ended", "pod", p.key, "status", ev.Status, "reason", ev.Reason)
	p.m.events.Push(ev)
}

// exitEvent is the pod's final status: see doc.go.
func (p *pod) exitEvent(ps *os.ProcessState, killed bool) Event {
	p.mu.Lock()
	ev := p.ev
	stopping, reason := p.stopping, p.stopReason
	p.mu.Unlock()
	ev.FinishedAt = time.Now()
	ws, _ := ps.Sys().(syscall.WaitStatus)
	how := fmt.Sprintf("exit code %d", ws.ExitStatus())
	ev.ExitCode = ws.ExitStatus()
	if ws.Signaled() {
		ev.ExitCode = 128 + int(ws.Signal())
		how = "killed by " + proc.SignalName(ws.Signal())
	}
	switch {
	case stopping && reason != "":
		ev.Status, ev.Reason = StatusFailed, reason
	case stopping && killed:
		ev.Status = StatusTerminated
		ev.Reason = fmt.Sprintf("terminated on request (killed by SIGKILL after the %s grace period)", p.m.cfg.StopGrace)
	case stopping:
		ev.Status, ev.Reason = StatusTerminated, "terminated on request"
	case ws.Exited() && ws.ExitStatus() == 0:
		ev.Status, ev.Reason = StatusTerminated, how
	default:
		ev.Status, ev.Reason = StatusFailed, how
	}
	return ev
}

// stop asks the pod's goroutine to stop it. reason "" is a stop on request
// (reported terminated); any other reason is reported failed with it. force
// skips the grace period.
func (p *pod) stop(reason string, force bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	if !p.stopping {
		p.stopping, p.stopReason = true, reason
	}
	p.force = p.force || force
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pod) ended() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

func (p *pod) status() Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ev
}

func (p *pod) scrollback() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.scrollbackLocked()
}

func (p *pod) scrollbackLocked() []byte {
	if p.scroll == nil {
		return slices.Clone(p.saved)
	}
	return p.scroll.snapshot()
}

// read copies the PTY's output to the scrollback and the attachers until
// the terminal is closed (EIO once no process holds it open).
func (p *pod) read(f *os.File, done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, readBuffer)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			p.output(slices.Clone(buf[:n]))
		}
		if err != nil {
			return
		}
	}
}

// output records chunk and hands it to every attacher. An attacher whose
// buffer is full is disconnected rather than waited for.
func (p *pod) output(chunk []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.scroll.write(chunk)
	for a := range p.subs {
		select {
		case a.out <- chunk:
		default:
			p.detachLocked(a, ErrSlowAttacher)
			p.m.log.Warn("disconnected an attacher that fell behind the pod's output", "pod", p.key)
		}
	}
}

// end records the final status and closes every attachment.
func (p *pod) end(ev Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ev, p.done = ev, true
	p.ptmx = nil
	for a := range p.subs {
		p.detachLocked(a, ErrPodExited)
	}
}

func (p *pod) detachLocked(a *Attachment, err error) {
	if _, ok := p.subs[a]; !ok {
		return
	}
	delete(p.subs, a)
	a.err = err
	close(a.out)
}

func (p *pod) attach() *Attachment {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := &Attachment{Scrollback: p.scrollbackLocked(), Status: p.ev, p: p, out: make(chan []byte, attachBuffer)}
	if p.done {
		a.err = ErrPodExited
		close(a.out)
		return a
	}
	p.subs[a] = struct{}{}
	return a
}

func (p *pod) terminal() (*os.File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ptmx == nil {
		return nil, ErrPodExited
	}
	return p.ptmx, nil
}

func (p *pod) resize(cols, rows int) error {
	if cols <= 0 || rows <= 0 || cols > 65535 || rows > 65535 {
		return fmt.Errorf("terminal size %dx%d: must be between 1 and 65535", cols, rows)
	}
	f, err := p.terminal()
	if err != nil {
		return err
	}
	ws := pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)}
	rc, err := f.SyscallConn()
	if err != nil {
		return ErrPodExited
	}
	var e syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, e = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSWINSZ, uintptr(unsafe.Pointer(&ws)))
	}); err != nil {
		return ErrPodExited // closed meanwhile
	}
	if e != 0 {
		return fmt.Errorf("resize terminal: %w", e)
	}
	return nil
}

// Attachment is one terminal attached to a pod. Output delivers what the
// pod writes after Scrollback; Write sends input as if typed. Any number of
// attachments may be open at once; detaching one leaves the pod running.
type Attachment struct {
	// Scrollback is the pod's retained output up to the moment of attaching;
	// Output continues exactly where it ends.
	Scrollback []byte
	// Status is the pod's state when it was attached to.
	Status Event

	p   *pod
	out chan []byte
	err error // why out was closed; guarded by p.mu
}

// Output delivers the pod's output in chunks, which the receiver must not
// modify (they are shared by all attachers). It is closed on Detach, once
// the pod ended and its last output was delivered, or when the attacher fell
// more than attachBuffer chunks behind; Err tells which.
func (a *Attachment) Output() <-chan []byte { return a.out }

// Err is nil while Output is open, then ErrDetached, ErrPodExited or
// ErrSlowAttacher.
func (a *Attachment) Err() error {
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	return a.err
}

// Write sends input to the pod's terminal. It blocks while the terminal's
// input buffer is full (the agent does not read), never the pod's output.
func (a *Attachment) Write(b []byte) (int, error) {
	if err := a.Err(); err != nil {
		return 0, err
	}
	f, err := a.p.terminal()
	if err != nil {
		return 0, err
	}
	n, err := f.Write(b)
	if err != nil && (errors.Is(err, fs.ErrClosed) || errors.Is(err, syscall.EIO)) {
		err = ErrPodExited
	}
	return n, err
}

// Resize sets the pod's terminal size; the agent gets SIGWINCH.
func (a *Attachment) Resize(cols, rows int) error { return a.p.resize(cols, rows) }

// Detach closes Output; the pod keeps running. It may be called more than
// once.
func (a *Attachment) Detach() {
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	a.p.detachLocked(a, ErrDetached)
}

// Final is the pod's final status once it ended, nil while it runs.
func (a *Attachment) Final() *Event {
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	if !a.p.done {
		return nil
	}
	ev := a.p.ev
	return &ev
}
