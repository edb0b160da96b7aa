package automations

import (
	"fmt"
	"io"
	"os/exec"
	"path/filepath"

	"github.com/runyard/runyard/internal/runner/holder"
	"github.com/runyard/runyard/internal/runner/mask"
)

// holderDir is where the process holder of the run with log logID lives.
func (e *Executor) holderDir(logID string) string {
	return filepath.Join(e.cfg.Dir, holdersDir, logID)
}

// outputPath is the $RUNYARD_OUTPUT file of the run with log logID.
func (e *Executor) outputPath(logID string) string {
	return filepath.Join(e.cfg.Dir, outputsDir, logID)
}

// holderSpec is what a holder runs for c, writing its masked output to
// logPath up to the executor's cap.
func (e *Executor) holderSpec(c Command, logPath string, extra ...string) (holder.Spec, error) {
	cmd, err := e.command(c, nil, extra...)
	if err != nil {
		return holder.Spec{}, err
	}
	return specOf(cmd, holder.Spec{Mode: holder.ModeLog, LogPath: logPath, LogCap: e.cfg.LogCap, Mask: c.Mask})
}

// specOf completes sp with the process of cmd.
func specOf(cmd *exec.Cmd, sp holder.Spec) (holder.Spec, error) {
	if cmd.Err != nil {
		return holder.Spec{}, cmd.Err
	}
	sp.Path, sp.Args, sp.Env, sp.Dir = cmd.Path, cmd.Args, cmd.Env, cmd.Dir
	return sp, nil
}

// masked is w with c's secret values masked.
func (e *Executor) masked(w io.Writer, c Command) *mask.Writer { return mask.NewWriter(w, c.Mask) }

// reopenLog opens the log of a run a previous runner process started, to
// go on following it and writing the runner's own lines into it.
func (e *Executor) reopenLog(logID string) (*runLog, error) {
	if validID("log", logID) != nil {
		return nil, fmt.Errorf("log ID %q: invalid", logID)
	}
	l, err := createLog(filepath.Join(e.cfg.Dir, logsDir, logID+".log"), e.cfg.LogCap)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.logs[logID] = l
	e.mu.Unlock()
	return l, nil
}

// serviceOutput reads what a service run wrote to $RUNYARD_OUTPUT; a
// malformed file is named in the service's log and yields nothing.
func (e *Executor) serviceOutput(logID string, lg *runLog) map[string]string {
	out, err := readOutputs(e.outputPath(logID))
	if err != nil {
		if lg != nil {
			lg.line("%v", err)
		}
		return nil
	}
	return out
}
