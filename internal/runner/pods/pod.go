package pods

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/runyard/runyard/internal/runner/holder"
	"github.com/runyard/runyard/internal/runner/ring"
	"github.com/runyard/runyard/internal/runner/statefile"
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

// TruncationMarker precedes a scrollback from which older output was
// dropped.
const TruncationMarker = ring.TruncationMarker

// attachBuffer is how many output chunks an attacher may fall behind before
// it is disconnected.
const attachBuffer = 256

// holderDir is where a pod's process holder lives, in the pod's directory.
const holderDir = "holder"

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
	force      bool       // SIGKILL now
	scroll     *ring.Ring // nil for a pod that ended before this process: see saved
	saved      []byte     // the output of an ended pod, read from its directory
	subs       map[*Attachment]struct{}
	h          *holder.Handle // the pod's process holder; nil once the pod ended
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
	p := m.newPod(s.Key)
	now := time.Now()
	h, err := p.launch(s)
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
	p.h = h
	p.ev = Event{Key: s.Key, Status: StatusRunning, StartedAt: now}
	m.log.Info("pod started", "pod", s.Key, "pid", h.Record().Command.Session)
	m.events.Push(p.ev)
	m.wg.Add(1)
	go p.run(h)
	return p
}

// newPod is a pod about to start or be adopted.
func (m *Manager) newPod(key string) *pod {
	return &pod{
		m:      m,
		key:    key,
		dir:    filepath.Join(m.dir, key),
		wake:   make(chan struct{}, 1),
		scroll: ring.New(m.cfg.ScrollbackBytes),
		subs:   map[*Attachment]struct{}{},
	}
}

// adopt takes over the pod whose holder a previous runner process started;
// m.mu is held. A holder that ended meanwhile is finished at once by run.
func (m *Manager) adopt(key string) (*pod, error) {
	p := m.newPod(key)
	h, err := holder.Adopt(filepath.Join(p.dir, holderDir), holder.Hooks{Output: p.output})
	if err != nil {
		return nil, err
	}
	p.h = h
	p.ev = Event{Key: key, Status: StatusRunning, StartedAt: h.Record().StartedAt}
	m.log.Info("adopted a pod a previous runner process started", "pod", key, "pid", h.Record().Command.Session)
	m.events.Push(p.ev)
	m.wg.Add(1)
	go p.run(h)
	return p, nil
}

// launch starts the pod's process under a holder of its own, in a new
// session on a new PTY. The holder's directory is the pod's record: a
// runner process that dies right after this finds it and adopts the pod.
func (p *pod) launch(s Spec) (*holder.Handle, error) {
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
	if !filepath.IsAbs(path) {
		path = filepath.Join(wd, path)
	}
	return holder.Start(filepath.Join(p.dir, holderDir), holder.Spec{
		Path: path, Args: s.Argv, Env: env, Dir: wd,
		Mode: holder.ModeTerminal, Cols: uint16(s.Cols), Rows: uint16(s.Rows),
		Scrollback: p.m.cfg.ScrollbackBytes, Input: s.Input,
	}, holder.Hooks{Output: p.output})
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

// run owns the pod from start to end: it is the state machine of doc.go.
// When the manager closes it lets go of the pod, which runs on under its
// holder for the next runner process.
func (p *pod) run(h *holder.Handle) {
	defer p.m.wg.Done()
	st := stateRunning
	killed := false // SIGKILL was sent on a stop
	var grace <-chan time.Time
	for st != stateExited {
		select {
		case <-h.Done():
			st = stateExited
		case <-p.m.detach:
			h.Detach()
			return
		case <-grace:
			grace = nil
			if st == stateStopping {
				st, killed = stateKilling, true
				p.m.log.Info("pod did not stop within the grace period: killing it", "pod", p.key, "grace", p.m.cfg.StopGrace)
				_ = h.Signal(syscall.SIGKILL)
			}
		case <-p.wake:
			p.mu.Lock()
			force := p.force
			p.mu.Unlock()
			if st == stateRunning {
				st = stateStopping
				// The terminal hangs up first, as when its window closes: a
				// shell ends at once on SIGHUP, where it ignores SIGTERM.
				_ = h.Signal(syscall.SIGHUP)
				_ = h.Signal(syscall.SIGTERM)
				t := time.NewTimer(p.m.cfg.StopGrace)
				defer t.Stop()
				grace = t.C
			}
			if force && st == stateStopping {
				st, killed = stateKilling, true
				_ = h.Signal(syscall.SIGKILL)
			}
		}
	}
	ev := p.exitEvent(h.Exit(), killed)
	p.end(ev)
	// The output goes first: an exit record promises it is there. The
	// holder saved the whole scrollback; this process may have joined late.
	out, err := os.ReadFile(filepath.Join(h.Dir(), holder.OutputFile))
	if err != nil {
		out = p.scrollback()
	}
	if err := os.WriteFile(filepath.Join(p.dir, outputFile), out, 0o600); err != nil {
		p.m.log.Error("save pod output", "pod", p.key, "err", err)
	}
	if err := finish(p.dir, ev); err != nil {
		p.m.log.Error("record pod exit", "pod", p.key, "err", err)
	} else if err := holder.Remove(h.Dir()); err != nil {
		p.m.log.Warn("remove the pod's holder directory", "pod", p.key, "err", err)
	}
	p.m.log.Info("pod ended", "pod", p.key, "status", ev.Status, "reason", ev.Reason)
	p.m.events.Push(ev)
}

// exitEvent is the pod's final status: see doc.go.
func (p *pod) exitEvent(x holder.Exit, killed bool) Event {
	p.mu.Lock()
	ev := p.ev
	stopping, reason := p.stopping, p.stopReason
	p.mu.Unlock()
	ev.FinishedAt = x.FinishedAt
	if ev.FinishedAt.IsZero() {
		ev.FinishedAt = time.Now()
	}
	how := x.How
	ev.ExitCode = x.Code
	switch {
	case how == holder.ErrDied.Error():
		ev.Status, ev.Reason = StatusFailed, how
	case stopping && reason != "":
		ev.Status, ev.Reason = StatusFailed, reason
	case stopping && killed:
		ev.Status = StatusTerminated
		ev.Reason = fmt.Sprintf("terminated on request (killed by SIGKILL after the %s grace period)", p.m.cfg.StopGrace)
	case stopping:
		ev.Status, ev.Reason = StatusTerminated, "terminated on request"
	case x.Signal == 0 && x.Code == 0:
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
	return p.scroll.Snapshot()
}

// output records a chunk of the terminal's output and hands it to every
// attacher; reset (the holder's whole scrollback, after a connection)
// replaces what was kept. An attacher whose buffer is full is disconnected
// rather than waited for.
func (p *pod) output(chunk []byte, reset bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if reset {
		p.scroll = ring.New(p.m.cfg.ScrollbackBytes)
		p.scroll.Write(chunk)
		return
	}
	p.scroll.Write(chunk)
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
	p.h = nil
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

func (p *pod) terminal() (*holder.Handle, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.h == nil {
		return nil, ErrPodExited
	}
	return p.h, nil
}

func (p *pod) resize(cols, rows int) error {
	if cols <= 0 || rows <= 0 || cols > 65535 || rows > 65535 {
		return fmt.Errorf("terminal size %dx%d: must be between 1 and 65535", cols, rows)
	}
	h, err := p.terminal()
	if err != nil {
		return err
	}
	if err := h.Resize(uint16(cols), uint16(rows)); err != nil {
		return fmt.Errorf("resize terminal: %w", err)
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
	h, err := a.p.terminal()
	if err != nil {
		return 0, err
	}
	if err := h.Input(b); err != nil {
		return 0, ErrPodExited
	}
	return len(b), nil
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
