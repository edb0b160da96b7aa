package automations

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
)

// Docker is runsOn.docker: the command runs in a container of Image.
type Docker struct {
	Image       string
	Environment []string
}

// Command is what one service command or task step runs.
type Command struct {
	// Script runs with `bash -c` where bash exists, `sh -c` otherwise.
	Script string
	// Env is added to the runner's environment (without its RUNYARD_
	// variables) and wins over it.
	Env map[string]string
	// Dir is the working directory: the environment's workspace.
	Dir string
	// Docker, when set, runs the script in a container.
	Docker *Docker
	// Err, when set, fails the command with it instead of running it: the
	// runner could not prepare it (a secret it needs is unreadable).
	Err error
	// Mask lists secret values (mask.Values) shown as *** in its log.
	Mask []string
}

// ErrNoDocker is the failure of a runsOn.docker command on a runner without
// a Docker engine: such a command never runs on the host instead.
var ErrNoDocker = errors.New("runsOn.docker: no Docker engine answers on this runner, so the command cannot run in a container (it is not run on the host instead)")

// shell is bash where it exists, sh otherwise.
var shell = func() string {
	if p, err := exec.LookPath("bash"); err == nil {
		return p
	}
	return "/bin/sh"
}()

// command builds the process of c with out as its stdout and stderr and
// extra added to its environment.
func (e *Executor) command(c Command, out io.Writer, extra ...string) (*exec.Cmd, error) {
	if c.Err != nil {
		return nil, c.Err
	}
	if c.Docker != nil && !e.cfg.Docker {
		return nil, ErrNoDocker
	}
	if c.Dir != "" {
		if st, err := os.Stat(c.Dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("working directory %s does not exist", c.Dir)
		}
	}
	env := baseEnv()
	keys := make([]string, 0, len(c.Env))
	for k := range c.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = setEnv(env, k, c.Env[k])
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		env = setEnv(env, k, v)
	}
	var cmd *exec.Cmd
	if c.Docker != nil {
		// The workspace is mounted where the command runs; the variables go
		// into the container (docker run --env NAME takes the value from the
		// environment of docker itself).
		args := []string{"run", "--rm", "--init", "-i"}
		if c.Dir != "" {
			args = append(args, "-v", c.Dir+":/workspace", "-w", "/workspace")
		}
		for _, kv := range c.Docker.Environment {
			args = append(args, "--env", kv)
		}
		for _, k := range keys {
			args = append(args, "--env", k)
		}
		for _, kv := range extra {
			k, _, _ := strings.Cut(kv, "=")
			args = append(args, "--env", k)
		}
		args = append(args, c.Docker.Image, "sh", "-c", c.Script)
		cmd = exec.Command("docker", args...)
	} else {
		cmd = exec.Command(shell, "-c", c.Script)
	}
	cmd.Env, cmd.Dir = env, c.Dir
	cmd.Stdout, cmd.Stderr = out, out
	return cmd, nil
}

// baseEnv is the runner's environment without its own RUNYARD_ variables,
// which may carry credentials.
func baseEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "RUNYARD_") })
}

func setEnv(env []string, k, v string) []string {
	env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, k+"=") })
	return append(env, k+"="+v)
}
