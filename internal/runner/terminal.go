package runner

import (
	"context"
	"errors"
	"time"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	podmgr "github.com/runyard/runyard/internal/runner/pods"
)

// serveTerminal opens a Terminal stream for one pod, as the control plane
// asked in open, and relays it until the pod ends, the control plane closes
// it or ctx (the Connect session) ends. The pod runs on regardless.
func (d *Daemon) serveTerminal(ctx context.Context, open *runnerv1.OpenTerminal) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := d.log.With("pod", open.GetPodKey())
	stream := d.control.Terminal(ctx)
	stream.RequestHeader().Set("Authorization", "Bearer "+d.state.AccessToken)
	defer stream.CloseRequest()

	hello := &runnerv1.TerminalHello{SessionId: open.GetSessionId()}
	a, err := d.pods.Attach(open.GetPodKey())
	if err != nil {
		hello.Error = err.Error()
	} else {
		hello.Scrollback, hello.Status = a.Scrollback, podStatusOf(a.Status)
		if open.GetFollow() {
			defer a.Detach()
		} else {
			a.Detach()
			a = nil
		}
	}
	if err := stream.Send(&runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_Hello{Hello: hello}}); err != nil {
		log.Warn("open terminal", "err", err)
		return
	}
	// Input and resizes from the control plane. The stream's end (the
	// client went away) detaches; after our last message it is the sign
	// that the control plane has read it, so the stream may go.
	received := make(chan struct{})
	finish := func() {
		_ = stream.CloseRequest()
		select {
		case <-received:
		case <-time.After(terminalLinger):
		}
	}
	if a == nil {
		go func() {
			defer close(received)
			for {
				if _, err := stream.Receive(); err != nil {
					return
				}
			}
		}()
		finish()
		return
	}
	go func() {
		defer close(received)
		defer cancel()
		for {
			m, err := stream.Receive()
			if err != nil {
				return
			}
			switch m := m.Message.(type) {
			case *runnerv1.TerminalResponse_Input:
				if _, err := a.Write(m.Input); err != nil {
					return
				}
			case *runnerv1.TerminalResponse_Resize:
				if err := a.Resize(int(m.Resize.GetCols()), int(m.Resize.GetRows())); err != nil && !errors.Is(err, podmgr.ErrPodExited) {
					log.Warn("resize pod terminal", "err", err)
				}
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case chunk, ok := <-a.Output():
			if !ok {
				end := &runnerv1.TerminalEnd{Reason: reasonOf(a.Err())}
				if ev := a.Final(); ev != nil {
					end.Status, end.Reason = podStatusOf(*ev), ev.Reason
				}
				_ = stream.Send(&runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_End{End: end}})
				finish()
				return
			}
			if err := stream.Send(&runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_Output{Output: chunk}}); err != nil {
				return
			}
		}
	}
}

// terminalLinger bounds the wait for the control plane to take a
// terminal's last message before the stream is dropped.
const terminalLinger = 10 * time.Second

func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
