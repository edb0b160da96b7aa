package runner

import (
	"context"
	"crypto/ecdh"
	"errors"
	"os/exec"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/crypto/nacl/box"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
)

// startAutomations hands what the runner found in a started environment to
// the control plane.
func (d *Daemon) startAutomations(ctx context.Context, req *runnerv1.StartAutomationsRequest) (*runnerv1.StartAutomationsResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r := connect.NewRequest(req)
	r.Header().Set("Authorization", "Bearer "+d.state.AccessToken)
	res, err := d.control.StartAutomations(ctx, r)
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// openSecret opens a secret value the control plane sealed to this runner's
// public key (a NaCl anonymous box).
func (d *Daemon) openSecret(sealed []byte) ([]byte, error) {
	return openSealed(d.state.key, sealed)
}

func openSealed(key *ecdh.PrivateKey, sealed []byte) ([]byte, error) {
	var pub, priv [32]byte
	copy(pub[:], key.PublicKey().Bytes())
	copy(priv[:], key.Bytes())
	out, ok := box.OpenAnonymous(nil, sealed, &pub, &priv)
	if !ok {
		return nil, errors.New("the sealed value does not open with this runner's key")
	}
	return out, nil
}

// stopAutomations stops every service and execution before the runner
// confirms its deletion.
func (d *Daemon) stopAutomations(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, d.stopGrace()+10*time.Second)
	defer cancel()
	d.envs.StopAll(ctx)
}

// dockerAnswers reports whether a Docker engine answers on this host: only
// then does the runner run runsOn.docker automations.
func dockerAnswers() bool {
	if _, err := exec.LookPath("docker"); err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").Run() == nil
}
