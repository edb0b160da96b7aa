// The runner's self-update: its states, and what moves it from one to the
// next (AgentsMesh's graceful updater is the model).
//
//	idle ──desired release of another version──▶ downloading
//	downloading ──SHA-256 and signature check out──▶ waiting-for-window
//	downloading ──download, checksum or signature fails──▶ failed
//	waiting-for-window ──inside the UTC window──▶ draining (no new pods, no new task executions)
//	draining ──window closes──▶ waiting-for-window (takes work again)
//	draining ──no task execution runs──▶ restarting: new binary in place, guard started, exec
//	restarting ──new binary reaches the control plane within --update-rollback-after──▶ idle (new version)
//	restarting ──new binary exits, or stays silent past the bound──▶ failed: the guard puts the
//	                                                                  previous binary back and starts it
//	failed ──a different release (other SHA-256)──▶ downloading
//
// Services and pods run under their holders in their own sessions, so the
// exec (same PID) and the rolled-back start re-adopt them: same PIDs.
// Running task executions would stop with the daemon, hence the drain.
// Under systemd the unit's main PID moves to the guard before the exec and
// back on confirmation (notify.go), so a rollback leaves the restored
// daemon, under the guard's PID, as the unit's main process.

package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/release"
	"github.com/runyard/runyard/internal/runner/statefile"
)

// Updater states, as the runner's status reports them.
const (
	UpdateIdle        = "idle"
	UpdateDownloading = "downloading"
	UpdateWaiting     = "waiting-for-window"
	UpdateDraining    = "draining"
	UpdateRestarting  = "restarting"
	UpdateFailed      = "failed"
)

// updateStates are all the updater's states, in the order of the diagram:
// the metrics show each one (0 or 1), so that a query over time sees a
// state's series before and after the runner was in it.
var updateStates = []string{UpdateIdle, UpdateDownloading, UpdateWaiting, UpdateDraining, UpdateRestarting, UpdateFailed}

// DefaultUpdateRollbackAfter bounds how long a new binary has to reach the
// control plane before the previous one is put back.
const DefaultUpdateRollbackAfter = 2 * time.Minute

// ErrRestart is returned by Run when the daemon stopped to run its new
// binary: the caller releases the state directory (Close) and execs
// Daemon.Executable with the same arguments (cli/runner.go).
var ErrRestart = errors.New("restarting into the updated binary")

// updateRecordFile is the update in flight, read by the guard and by the
// daemon that starts next.
const (
	updateRecordFile = "update.json"
	updateDir        = "update"
)

// Record states.
const (
	recordTrial      = "trial"
	recordConfirmed  = "confirmed"
	recordRolledBack = "rolled-back"
	recordFailed     = "failed"
	// recordStopped: the unit (or the guard) was stopped during the trial;
	// the guard stops the new binary and calls the update off.
	recordStopped = "stopped"
)

// updateLockFile serializes the trial's decisions (lockUpdate).
const updateLockFile = "update.lock"

// updateRecord is update.json.
type updateRecord struct {
	State        string   `json:"state"`
	Target       string   `json:"target"`
	TargetSHA256 string   `json:"targetSha256"`
	Previous     string   `json:"previous"`
	PreviousBin  string   `json:"previousBinary,omitempty"`
	Exe          string   `json:"exe,omitempty"`
	Args         []string `json:"args,omitempty"`
	PID          int      `json:"pid,omitempty"`
	GuardPID     int      `json:"guardPid,omitempty"`
	// GuardMain is set when the guard holds the service's main PID
	// (notify.go): it hands it back on confirmation.
	GuardMain bool      `json:"guardMainPid,omitempty"`
	Deadline  time.Time `json:"deadline,omitzero"`
	// RollbackAfter is the bound the deadline was set with.
	RollbackAfter time.Duration `json:"rollbackAfter,omitempty"`
	Failure       string        `json:"failure,omitempty"`
	FailedAt      time.Time     `json:"failedAt,omitzero"`
}

// InWindow reports whether hour h (UTC) is inside the window [start, end);
// end <= start wraps midnight (22 to 2 is 22, 23, 0, 1), and end == start is
// the whole day.
func InWindow(h, start, end int) bool {
	if start == end {
		return true
	}
	if start < end {
		return h >= start && h < end
	}
	return h >= start || h < end
}

// updater is the daemon's self-update (one goroutine, run).
type updater struct {
	d    *Daemon
	wake chan struct{}
	// drain is set while the runner drains for its restart: apply starts
	// no new pod and no new execution.
	drain atomic.Bool

	mu       sync.Mutex
	want     *runnerv1.RunnerUpdate
	state    string
	target   string
	failure  string
	failedAt time.Time
	// failedSHA is the archive that failed: it is not tried again; a new
	// release (another archive) is.
	failedSHA string
	// staged is the verified binary of want, ready to run.
	staged, stagedSHA string
	// trial is set while this daemon is a new binary that has not reached
	// the control plane yet.
	trial *updateRecord
	// failures counts the updates that failed, and the rollbacks, this
	// process saw (runyard_runner_update_failures_total).
	failures int64
}

func newUpdater(d *Daemon) *updater {
	u := &updater{d: d, wake: make(chan struct{}, 1), state: UpdateIdle}
	var rec updateRecord
	if err := statefile.Read(d.state.path(updateRecordFile), &rec); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("read the update record", "err", err)
		}
		return u
	}
	switch rec.State {
	case recordTrial:
		if rec.Target == d.cfg.Version {
			u.trial = &rec
			u.target = rec.Target
			u.state = UpdateRestarting
			d.log.Info("started as the updated binary: confirming once the control plane answers", "version", rec.Target, "previous", rec.Previous)
		}
	case recordRolledBack, recordFailed:
		u.state, u.target, u.failure, u.failedAt, u.failedSHA = UpdateFailed, rec.Target, rec.Failure, rec.FailedAt, rec.TargetSHA256
		if rec.State == recordRolledBack {
			// The guard rolled back and started this binary: the failure
			// is new, and this process is the first to see it (a failed
			// record was counted by the process that wrote it).
			u.failures++
			d.log.Warn("the update failed and was rolled back", "target", rec.Target, "reason", rec.Failure)
			rec.State = recordFailed
			_ = statefile.Write(d.state.path(updateRecordFile), &rec)
		}
	}
	return u
}

// status is the updater's part of the runner's status.
func (u *updater) status() *runnerv1.UpdateStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state == UpdateIdle && u.target == "" {
		return nil
	}
	st := &runnerv1.UpdateStatus{State: u.state, TargetVersion: u.target, Failure: u.failure}
	if !u.failedAt.IsZero() {
		st.FailedAt = timestamppb.New(u.failedAt)
	}
	return st
}

// updateMetrics is the updater as its metrics show it.
type updateMetrics struct {
	state, target, channel string
	failures               int64
}

func (u *updater) metrics() updateMetrics {
	u.mu.Lock()
	defer u.mu.Unlock()
	return updateMetrics{state: u.state, target: u.target, channel: u.want.GetChannel(), failures: u.failures}
}

// setWant takes the release of a new desired state.
func (u *updater) setWant(w *runnerv1.RunnerUpdate) {
	u.mu.Lock()
	u.want = w
	u.mu.Unlock()
	u.poke()
}

func (u *updater) poke() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// set changes the state and tells the control plane.
func (u *updater) set(state, target string) {
	u.mu.Lock()
	changed := u.state != state || u.target != target
	u.state, u.target = state, target
	if state != UpdateFailed {
		u.failure, u.failedAt = "", time.Time{}
	}
	u.mu.Unlock()
	if changed {
		u.d.log.Info("update", "state", state, "target", target)
		u.d.statusChanged()
		u.d.notify()
	}
}

// fail records a failed update of want; the same archive is not tried again.
func (u *updater) fail(w *runnerv1.RunnerUpdate, reason string) {
	now := u.d.now().UTC()
	u.mu.Lock()
	u.state, u.target, u.failure, u.failedAt, u.failedSHA = UpdateFailed, w.GetVersion(), reason, now, w.GetSha256()
	u.failures++
	u.mu.Unlock()
	u.d.log.Warn("update failed", "target", w.GetVersion(), "reason", reason)
	rec := updateRecord{State: recordFailed, Target: w.GetVersion(), TargetSHA256: w.GetSha256(), Previous: u.d.cfg.Version, Failure: reason, FailedAt: now}
	if err := statefile.Write(u.d.state.path(updateRecordFile), &rec); err != nil {
		u.d.log.Warn("record the failed update", "err", err)
	}
	u.setDrain(false)
	u.d.statusChanged()
	u.d.notify()
}

func (u *updater) setDrain(on bool) {
	if u.drain.Swap(on) != on {
		u.d.statusChanged()
		if !on {
			// What was held back while draining starts now.
			select {
			case u.d.reapply <- struct{}{}:
			default:
			}
		}
	}
}

// confirm is called when this daemon reached the control plane: a new
// binary on trial keeps its place, and its guard stands down.
func (u *updater) confirm() {
	u.mu.Lock()
	rec := u.trial
	u.trial = nil
	u.mu.Unlock()
	if rec == nil {
		return
	}
	// Under the lock, so that the guard's decisions and this one exclude
	// each other: a guard that chose to roll back (and kills this process)
	// or to stop has changed the record's state first.
	unlock, err := lockUpdate(u.d.state.dir)
	if err != nil {
		u.d.log.Error("confirm the update: the guard may roll it back", "err", err)
		return
	}
	var now updateRecord
	if err := statefile.Read(u.d.state.path(updateRecordFile), &now); err != nil || now.State != recordTrial || now.Target != rec.Target {
		unlock()
		u.d.log.Warn("the update guard ended the trial first: not confirming", "state", now.State, "err", err)
		return
	}
	rec.State = recordConfirmed
	err = statefile.Write(u.d.state.path(updateRecordFile), rec)
	unlock()
	if err != nil {
		u.d.log.Error("confirm the update: the guard may roll it back", "err", err)
		return
	}
	u.d.log.Info("updated", "version", rec.Target, "previous", rec.Previous)
	if rec.GuardPID > 0 {
		// The guard is this process's child (started before the exec):
		// reap it once it has seen the confirmation. If it held the
		// service's main PID, it handed it back before it exited.
		main := guardHoldsMain(rec)
		go func() {
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(rec.GuardPID, &ws, 0, nil)
			if main {
				u.d.becomeMain()
			}
		}()
	}
	u.set(UpdateIdle, "")
}

// lockUpdate takes the update's lock in dir (flock, released by unlock or
// when the process ends or execs).
func lockUpdate(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, updateLockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("update lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("update lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// run steps the updater until ctx ends; restart is called when the new
// binary is in place and the daemon is to exec it.
func (u *updater) run(ctx context.Context, restart func()) {
	tick := time.NewTicker(u.d.cfg.UpdateCheckInterval)
	defer tick.Stop()
	for {
		if u.step(ctx) {
			restart()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-u.wake:
		case <-tick.C:
		}
	}
}

// step moves the updater on; it returns true when the daemon is to exec its
// new binary.
func (u *updater) step(ctx context.Context) bool {
	u.mu.Lock()
	w, trial, failedSHA := u.want, u.trial, u.failedSHA
	staged, stagedSHA := u.staged, u.stagedSHA
	u.mu.Unlock()
	if trial != nil {
		return false // confirm() ends the trial
	}
	if w == nil || w.GetVersion() == u.d.cfg.Version || w.GetVersion() == "" {
		u.setDrain(false)
		u.mu.Lock()
		idle := u.state != UpdateFailed || w != nil && w.GetVersion() == u.d.cfg.Version
		u.mu.Unlock()
		if idle {
			u.set(UpdateIdle, "")
		}
		return false
	}
	if w.GetSha256() == failedSHA {
		return false
	}
	if len(u.d.cfg.ReleasePublicKey) == 0 {
		u.fail(w, "this runner has no --release-public-key, so it cannot verify a release and does not update")
		return false
	}
	if staged == "" || stagedSHA != w.GetSha256() {
		u.set(UpdateDownloading, w.GetVersion())
		bin, err := u.download(ctx, w)
		if err != nil {
			if ctx.Err() == nil {
				u.fail(w, err.Error())
			}
			return false
		}
		u.mu.Lock()
		u.staged, u.stagedSHA = bin, w.GetSha256()
		u.mu.Unlock()
		staged = bin
	}
	if w.GetHasWindow() && !InWindow(u.d.now().UTC().Hour(), int(w.GetStartHour()), int(w.GetEndHour())) {
		u.setDrain(false)
		u.set(UpdateWaiting, w.GetVersion())
		return false
	}
	u.set(UpdateDraining, w.GetVersion())
	// One step of drain before the restart: a desired state applied just
	// before the drain began may have started an execution the executor
	// has not reported yet.
	if !u.drain.Load() {
		u.setDrain(true)
		return false
	}
	if _, running := u.d.envs.Executions(); running > 0 {
		return false // the next step looks again
	}
	u.set(UpdateRestarting, w.GetVersion())
	if err := u.swap(staged, w); err != nil {
		u.fail(w, err.Error())
		return false
	}
	return true
}

// download fetches w's archive from the control plane and checks it with
// the runner's own release public key: the signature over SHA256SUMS, then
// the archive's SHA-256 against its line. It returns the extracted binary.
func (u *updater) download(ctx context.Context, w *runnerv1.RunnerUpdate) (string, error) {
	name := w.GetArchive()
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("the desired release names a bad archive %q", name)
	}
	dir := u.d.state.path(updateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	archive := filepath.Join(dir, name)
	if err := fetch(ctx, u.d.http, strings.TrimRight(u.d.state.Server, "/")+w.GetDownloadPath(), u.d.state.AccessToken, archive); err != nil {
		return "", fmt.Errorf("download %s: %w", name, err)
	}
	defer os.Remove(archive)
	if err := verifyDownload(archive, w, u.d.cfg.ReleasePublicKey); err != nil {
		return "", fmt.Errorf("refused %s: %w", name, err)
	}
	bin := filepath.Join(dir, "runyard-"+w.GetSha256()[:16])
	if err := release.ExtractBinary(archive, bin); err != nil {
		return "", fmt.Errorf("extract %s: %w", name, err)
	}
	return bin, nil
}

// verifyDownload checks archive against w's signed sums with pub, and that
// the sums name the archive the desired state says.
func verifyDownload(archive string, w *runnerv1.RunnerUpdate, pub release.PublicKey) error {
	want, err := release.VerifySums(w.GetSums(), w.GetSumsSignature(), pub)
	if err != nil {
		return err
	}
	if sum := want[filepath.Base(archive)]; sum != w.GetSha256() {
		return fmt.Errorf("the signed %s says %q for it, the desired state %q", release.SumsFile, sum, w.GetSha256())
	}
	return release.VerifyArchive(archive, w.GetSums(), w.GetSumsSignature(), pub)
}

// maxDownload bounds a downloaded archive.
const maxDownload = 1 << 30

func fetch(ctx context.Context, hc *http.Client, url, token, dst string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("the control plane answered %s: %s", res.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(res.Body, maxDownload)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// swap keeps a copy of the running binary, puts the new one in its place,
// records the trial and starts the guard that rolls back if the new binary
// does not reach the control plane in time.
func (u *updater) swap(staged string, w *runnerv1.RunnerUpdate) error {
	exe := u.d.exe
	dir := u.d.state.path(updateDir)
	prev := filepath.Join(dir, "runyard-previous")
	if err := copyFile(exe, prev); err != nil {
		return fmt.Errorf("keep the running binary: %w", err)
	}
	if err := installBinary(staged, exe); err != nil {
		return fmt.Errorf("replace %s: %w", exe, err)
	}
	rec := updateRecord{
		State: recordTrial, Target: w.GetVersion(), TargetSHA256: w.GetSha256(), Previous: u.d.cfg.Version,
		PreviousBin: prev, Exe: exe, Args: os.Args, PID: os.Getpid(),
		Deadline: time.Now().Add(u.d.cfg.UpdateRollbackAfter), RollbackAfter: u.d.cfg.UpdateRollbackAfter,
	}
	if err := statefile.Write(u.d.state.path(updateRecordFile), &rec); err != nil {
		_ = installBinary(prev, exe)
		return fmt.Errorf("record the update: %w", err)
	}
	// The guard is the previous binary: it must work whatever the new
	// one does. It has its own session, so it outlives this process.
	guard := exec.Command(prev, "runner", "update-guard", "--state-dir", u.d.state.dir)
	guard.Env = append(os.Environ(), u.d.notifyEnv()...)
	guard.Stdout, guard.Stderr = os.Stdout, os.Stderr
	guard.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := guard.Start(); err != nil {
		_ = installBinary(prev, exe)
		_ = os.Remove(u.d.state.path(updateRecordFile))
		return fmt.Errorf("start the update guard: %w", err)
	}
	rec.GuardPID = guard.Process.Pid
	// Under a service manager the guard becomes the main process before
	// the exec: the new binary may exit at once, and systemd must not see
	// the main PID go while the guard puts the previous binary back and
	// runs it under its own PID (notify.go).
	if u.d.sd.n != nil {
		status := fmt.Sprintf("updating to %s: the update guard (PID %d) rolls back to %s unless it reaches the control plane within %s",
			w.GetVersion(), rec.GuardPID, u.d.cfg.Version, u.d.cfg.UpdateRollbackAfter)
		if err := u.d.handOffMain(rec.GuardPID, status); err != nil {
			_ = guard.Process.Kill()
			_ = guard.Wait()
			_ = installBinary(prev, exe)
			_ = os.Remove(u.d.state.path(updateRecordFile))
			return fmt.Errorf("hand the service's main PID to the update guard: %w", err)
		}
		rec.GuardMain = true
	}
	if err := statefile.Write(u.d.state.path(updateRecordFile), &rec); err != nil {
		u.d.log.Warn("record the guard's pid", "err", err)
	}
	u.d.log.Info("restarting into the updated binary", "version", w.GetVersion(), "binary", exe, "guard", rec.GuardPID)
	return nil
}

// installBinary puts src at dst atomically: a copy beside dst renamed over
// it, so that dst is the old binary or the new one, never half of one.
func installBinary(src, dst string) error {
	tmp := dst + ".runyard-update"
	if err := copyFile(src, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, 0o755)
}
