package pods

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/runyard/runyard/internal/runner/holder"
	"github.com/runyard/runyard/internal/runner/proc"
	"github.com/runyard/runyard/internal/runner/queue"
	"github.com/runyard/runyard/internal/runner/statefile"
)

// Config configures a Manager.
type Config struct {
	// StateDir is the runner's state directory; pods live in StateDir/pods.
	StateDir string
	// StopGrace is how long a terminated pod has between SIGTERM and
	// SIGKILL; default 2 minutes.
	StopGrace time.Duration
	// ScrollbackBytes bounds each pod's scrollback; default 1 MiB.
	ScrollbackBytes int
	// Retention is how long the directory of a pod that ended and is no
	// longer desired (its exit record, output and default working
	// directory) is kept after it ended; default 7 days.
	Retention time.Duration
	// GCInterval is how often such directories are looked for; default
	// hourly.
	GCInterval time.Duration
	Logger     *slog.Logger
}

// Manager runs the pods of one runner. It goes New → Open → Close; Ensure,
// Terminate and the terminal methods work while it is open.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	dir    string
	bootID string
	events *queue.Queue[Event]

	mu     sync.Mutex
	opened bool
	closed bool
	pods   map[string]*pod
	// synced is set by the first Ensure: until then every pod found on
	// disk is held, since the control plane may still want it.
	synced bool
	wg     sync.WaitGroup // one per pod goroutine
	quit   chan struct{}  // ends the collection of old pod directories
	// detach is closed by Close: pod goroutines let go of their pods,
	// which run on under their holders.
	detach chan struct{}
}

// New checks cfg and returns a Manager that is not open yet. Events can be
// read from the start.
func New(cfg Config) (*Manager, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("pods: StateDir is required")
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 2 * time.Minute
	}
	if cfg.ScrollbackBytes <= 0 {
		cfg.ScrollbackBytes = 1 << 20
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	if cfg.GCInterval <= 0 {
		cfg.GCInterval = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{
		cfg:    cfg,
		log:    cfg.Logger,
		dir:    filepath.Join(cfg.StateDir, "pods"),
		bootID: proc.BootID(),
		events: queue.New[Event](),
		pods:   map[string]*pod{},
		quit:   make(chan struct{}),
		detach: make(chan struct{}),
	}, nil
}

// Open creates StateDir/pods and takes over what a previous runner process
// left there: pods that ended are remembered (they are never started
// again), pods still running under their holders are adopted (same
// processes, same scrollback), and pods whose holder is gone are reported
// as they ended. A pod of a runner that ran pods without holders (a pid
// file only) has what is left of its processes killed and is reported
// failed with reason "runner restarted".
func (m *Manager) Open(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.opened || m.closed {
		return errors.New("pods: Open called twice")
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return fmt.Errorf("create pods dir: %w", err)
	}
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return fmt.Errorf("read pods dir: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		key := e.Name()
		if strings.HasPrefix(key, trashPrefix) {
			// A collection the previous process did not finish.
			if err := os.RemoveAll(filepath.Join(m.dir, key)); err != nil {
				m.log.Warn("remove an old pod directory", "dir", key, "err", err)
			}
			continue
		}
		if !e.IsDir() || validKey(key) != nil {
			continue
		}
		if dir := filepath.Join(m.dir, key); unstarted(dir) {
			// The previous runner process made the pod's directory and
			// died before it handed the agent to a holder: the pod never
			// ran. Forgotten, it starts if the control plane still wants
			// it here.
			m.log.Info("forgetting a pod the previous runner process did not start", "pod", key)
			if err := os.RemoveAll(dir); err != nil {
				m.log.Warn("remove the directory of a pod that did not start", "pod", key, "err", err)
			}
			continue
		}
		if held, err := m.recoverHeld(key); held {
			if err != nil {
				m.log.Error("adopt pod", "pod", key, "err", err)
			}
			continue
		}
		ev, changed, err := recoverPod(filepath.Join(m.dir, key), key, m.bootID, time.Now())
		if err != nil {
			m.log.Error("recover pod", "pod", key, "err", err)
			continue
		}
		if changed {
			m.log.Warn("killed the leftover processes of a pod the previous runner process ran", "pod", key)
			m.events.Push(ev)
		}
		m.pods[key] = endedPod(m, key, ev)
	}
	m.opened = true
	go m.collectLoop()
	return nil
}

// unstarted reports whether the pod directory dir records no start: no
// exit, no pid file, and a holder directory that no holder was handed.
func unstarted(dir string) bool {
	for _, f := range []string{exitFile, pidFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return holder.Unstarted(filepath.Join(dir, holderDir))
}

// recoverHeld adopts the pod key when its directory has a holder and no
// exit record; it reports whether the pod was the holder's to recover.
func (m *Manager) recoverHeld(key string) (bool, error) {
	dir := filepath.Join(m.dir, key)
	if _, err := os.Stat(filepath.Join(dir, exitFile)); err == nil {
		return false, nil
	}
	if _, err := os.Stat(filepath.Join(dir, holderDir)); err != nil {
		return false, nil
	}
	p, err := m.adopt(key)
	if err != nil {
		return true, err
	}
	m.pods[key] = p
	return true, nil
}

// trashPrefix names a pod directory being removed; no pod key starts with
// a dot.
const trashPrefix = ".gc-"

func (m *Manager) collectLoop() {
	t := time.NewTicker(m.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-m.quit:
			return
		case <-t.C:
			m.collect(time.Now())
		}
	}
}

// collect removes the directories of pods that ended more than Retention
// before now and that the control plane no longer wants: a pod it still
// wants (its exit not recorded there yet) keeps its exit record, so that it
// is never started twice.
func (m *Manager) collect(now time.Time) {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		m.log.Warn("read the pods directory to collect old pods", "err", err)
		return
	}
	for _, e := range entries {
		key := e.Name()
		if !e.IsDir() || validKey(key) != nil {
			continue
		}
		dir, trash := filepath.Join(m.dir, key), filepath.Join(m.dir, trashPrefix+key)
		m.mu.Lock()
		_, held := m.pods[key]
		if held || !m.synced || m.closed {
			m.mu.Unlock()
			continue
		}
		info, err := os.Stat(filepath.Join(dir, exitFile))
		if err != nil || now.Sub(info.ModTime()) < m.cfg.Retention {
			m.mu.Unlock()
			continue
		}
		// Renamed under the lock, so that no Ensure starts the key while
		// its record is half gone; removed outside it, however large its
		// working directory is.
		err = os.Rename(dir, trash)
		m.mu.Unlock()
		if err == nil {
			err = os.RemoveAll(trash)
		}
		if err != nil {
			m.log.Warn("remove the directory of an old pod", "pod", key, "err", err)
			continue
		}
		m.log.Debug("removed the directory of a pod past its retention", "pod", key)
	}
}

// Close lets go of every pod: running pods go on under their holders, for
// the next runner process to adopt (so a runner restart, upgrade or crash
// kills no agent). It returns once every pod goroutine let go and the
// events were delivered; then the Events channel is closed. Events still
// unread a second after ctx ends are dropped. StopAll ends the pods
// themselves.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	if m.opened {
		close(m.quit)
	}
	close(m.detach)
	m.mu.Unlock()
	m.wg.Wait()
	m.events.Close()
	return m.events.Drain(ctx, eventDrainGrace)
}

// StopAll terminates every running pod with reason (SIGHUP and SIGTERM,
// SIGKILL after StopGrace or once ctx ends) and waits until they ended.
func (m *Manager) StopAll(ctx context.Context, reason string) {
	m.mu.Lock()
	running := m.runningLocked()
	m.mu.Unlock()
	for _, p := range running {
		p.stop(reason, false)
	}
	forced := false
	for _, p := range running {
		for !p.ended() {
			if !forced && ctx.Err() != nil {
				forced = true
				for _, q := range running {
					q.stop(reason, true)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (m *Manager) runningLocked() []*pod {
	var out []*pod
	for _, p := range m.pods {
		if !p.ended() {
			out = append(out, p)
		}
	}
	return out
}

// Events delivers every change of a pod's status: running when it started,
// then its final status. The daemon forwards them to the control plane; it
// should read them promptly, though nothing in a pod waits for it. The
// channel is closed by Close.
func (m *Manager) Events() <-chan Event { return m.events.Out() }

// Ensure converges on desired, the full set of pods the control plane wants
// on this runner: pods never seen before are started, running pods missing
// from desired are terminated (asynchronously; their events follow), and
// pods that ended and are no longer desired are forgotten. A key is started
// at most once, even when its Spec arrives again after a reconnect or after
// the pod ended. A spec that is invalid is not started: a bad key is
// reported in the returned error, any other fault as a failed pod.
func (m *Manager) Ensure(desired []Spec) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usableLocked(); err != nil {
		return err
	}
	m.synced = true
	var errs []error
	want := make(map[string]bool, len(desired))
	for _, s := range desired {
		if err := validKey(s.Key); err != nil {
			errs = append(errs, err)
			continue
		}
		want[s.Key] = true
		if _, ok := m.pods[s.Key]; ok {
			continue
		}
		m.pods[s.Key] = m.start(s)
	}
	for key, p := range m.pods {
		if want[key] {
			continue
		}
		if p.ended() {
			delete(m.pods, key) // its exit record stays on disk as a tombstone
			continue
		}
		p.stop("", false)
	}
	return errors.Join(errs...)
}

func (m *Manager) usableLocked() error {
	if m.closed {
		return ErrClosed
	}
	if !m.opened {
		return ErrNotOpen
	}
	return nil
}

// Terminate stops the pod key: SIGTERM to its processes, SIGKILL after
// StopGrace. It returns at once; the pod's final event (terminated) follows.
// Terminating a pod that already ended does nothing. ErrUnknownPod when the
// manager does not know key.
func (m *Manager) Terminate(key string) error {
	p, err := m.pod(key)
	if err != nil {
		return err
	}
	p.stop("", false)
	return nil
}

// Pods returns the status of every pod the manager knows, by key: the full
// snapshot the daemon reports on every connect.
func (m *Manager) Pods() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Event, 0, len(m.pods))
	for _, p := range m.pods {
		out = append(out, p.status())
	}
	slices.SortFunc(out, func(a, b Event) int {
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	})
	return out
}

// Get returns the status of pod key, or ErrUnknownPod.
func (m *Manager) Get(key string) (Event, error) {
	p, err := m.pod(key)
	if err != nil {
		return Event{}, err
	}
	return p.status(), nil
}

// Scrollback returns the pod's retained output, with TruncationMarker in
// front when older output was dropped; for a pod that ended, also one no
// longer held, the output it had when it ended.
func (m *Manager) Scrollback(key string) ([]byte, error) {
	p, err := m.podOrRecord(key)
	if err != nil {
		return nil, err
	}
	return p.scrollback(), nil
}

// Attach connects a terminal to the pod key: see Attachment. A pod that
// ended, also one no longer held, can be attached to as well; its output
// channel is closed at once.
func (m *Manager) Attach(key string) (*Attachment, error) {
	p, err := m.podOrRecord(key)
	if err != nil {
		return nil, err
	}
	return p.attach(), nil
}

// Resize sets the terminal size of pod key; the agent gets SIGWINCH.
func (m *Manager) Resize(key string, cols, rows int) error {
	p, err := m.pod(key)
	if err != nil {
		return err
	}
	return p.resize(cols, rows)
}

func (m *Manager) pod(key string) (*pod, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usableLocked(); err != nil && !errors.Is(err, ErrClosed) {
		return nil, err
	}
	p, ok := m.pods[key]
	if !ok {
		return nil, fmt.Errorf("pod %q: %w", key, ErrUnknownPod)
	}
	return p, nil
}

// podOrRecord is pod(key) or, for a pod that ended and left the desired set
// (no longer held), what its directory still records: its exit and output.
func (m *Manager) podOrRecord(key string) (*pod, error) {
	p, err := m.pod(key)
	if !errors.Is(err, ErrUnknownPod) {
		return p, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if validKey(key) == nil {
		var ev Event
		if err := statefile.Read(filepath.Join(m.dir, key, exitFile), &ev); err == nil {
			ev.Key = key
			return endedPod(m, key, ev), nil
		}
	}
	return nil, fmt.Errorf("pod %q: %w", key, ErrUnknownPod)
}

// eventDrainGrace is how long Close still delivers events after its ctx
// ended: the pods' last events come after their SIGKILL, which ctx's end
// may have triggered.
const eventDrainGrace = time.Second
