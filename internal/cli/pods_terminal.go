package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/runyard/runyard/internal/apperr"
)

// This file is `runyard pods logs` and `runyard pods attach`: a pod's
// output and its terminal, through the control plane.

func newPodsLogsCmd(g *globals, org *string) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs POD",
		Short: "Print a pod's output",
		Long: `Print a pod's output: what its terminal kept (the most recent output, with a
marker where older output was dropped). With -f, go on printing as the pod
writes, until it ends or Ctrl-C; then, like attach, it prints how the pod ended
and exits 1 when the pod failed. The output comes from the pod's runner, which
must be online.`,
		Args: exactArgs("POD"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.restClient(*org)
			if err != nil {
				return err
			}
			q := url.Values{}
			if follow {
				q.Set("follow", "1")
			}
			ctx := cmd.Context()
			if err := c.stream(ctx, "/pods/"+url.PathEscape(args[0])+"/output", q, g.stdout); err != nil || !follow || ctx.Err() != nil {
				return err
			}
			// The output ended with the pod: say how, as attach does. The
			// runner reports the end just after the output's; wait for
			// it a little, no longer.
			for i := 0; ; i++ {
				raw, err := c.do(ctx, http.MethodGet, "/pods/"+url.PathEscape(args[0]), nil, nil)
				if err != nil {
					return err
				}
				p, err := decodePod(raw)
				if err != nil {
					return err
				}
				if p.Status == "terminated" || p.Status == "failed" {
					return g.podEnded(p.Key, p.Status, p.ExitCode, p.Reason, "\n")
				}
				if i == podEndPolls || !sleepCtx(ctx, pollInterval) {
					return nil
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing the pod's output until it ends")
	return cmd
}

// podEndPolls bounds how often `pods logs -f` asks how a pod ended after
// its output did: 40 polls of pollInterval, 10 s.
const podEndPolls = 40

// stream copies the body of GET path?query to w as it arrives; an error
// answer is returned like do's.
func (c *restClient) stream(ctx context.Context, path string, query url.Values, w io.Writer) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// No overall timeout: a followed output lasts as long as the pod.
	hc := *c.hc
	hc.Timeout = 0
	res, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return unreachable(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, maxResponse))
		return restError(res.StatusCode, b)
	}
	if _, err := io.Copy(w, res.Body); err != nil && ctx.Err() == nil {
		return &apperr.Error{Code: apperr.CodeUnavailable, Message: "the output stream broke: " + err.Error()}
	}
	return nil
}

func unreachable(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &apperr.Error{Code: apperr.CodeUnavailable, Message: "cannot reach the control plane: " + err.Error()}
}

func newPodsAttachCmd(g *globals, org *string) *cobra.Command {
	var detachKey string
	var readonly bool
	cmd := &cobra.Command{
		Use:   "attach POD",
		Short: "Attach this terminal to a pod's terminal",
		Long: `Attach this terminal to a pod's terminal: you see what the agent shows
(starting with what it showed before) and type to it; the pod's terminal
takes this terminal's size and follows its resizes.

Detach with the detach key (Ctrl-] unless --detach-key says otherwise): the
pod keeps running and you can attach again later. Ctrl-C goes to the agent.
When the pod ends, attach prints how ("pod KEY failed: exit code 4") and exits
(1 when the pod failed). --readonly watches without typing: what you type is
not sent, and a key with only pods:read may attach so.
Without a terminal on stdin, attach sends what stdin carries and keeps
showing the output until the pod ends.`,
		Args: exactArgs("POD"),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := parseDetachKey(detachKey)
			if err != nil {
				return err
			}
			c, err := g.restClient(*org)
			if err != nil {
				return err
			}
			return g.attach(cmd.Context(), c, args[0], key, readonly, cmd.InOrStdin())
		},
	}
	cmd.Flags().StringVar(&detachKey, "detach-key", "ctrl-]", "the key that detaches: ctrl-A .. ctrl-Z, ctrl-], ctrl-\\, ctrl-^ or ctrl-_")
	cmd.Flags().BoolVar(&readonly, "readonly", false, "watch without typing (needs only pods:read)")
	return cmd
}

// parseDetachKey turns "ctrl-X" into its control byte.
func parseDetachKey(s string) (byte, error) {
	k, ok := strings.CutPrefix(strings.ToLower(s), "ctrl-")
	if ok && len(k) == 1 {
		switch c := k[0]; {
		case c >= 'a' && c <= 'z':
			return c - 'a' + 1, nil
		case c == '[', c == ']', c == '\\', c == '^', c == '_':
			return strings.ToUpper(k)[0] ^ 0x40, nil
		}
	}
	return 0, usagef("--detach-key %q: want ctrl- and a letter or one of [ ] \\ ^ _", s)
}

// terminalEvent is a text message of the terminal WebSocket
// (rest.terminalEvent).
type terminalEvent struct {
	Type     string `json:"type"`
	Data     string `json:"data,omitempty"`
	Cols     int    `json:"cols,omitempty"`
	Rows     int    `json:"rows,omitempty"`
	Status   string `json:"status,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Error    string `json:"error,omitempty"`
}

var errDetached = errors.New("detached")

func (g *globals) attach(ctx context.Context, c *restClient, podKey string, detach byte, readonly bool, stdin io.Reader) error {
	u := "ws" + strings.TrimPrefix(c.base, "http") + "/pods/" + url.PathEscape(podKey) + "/terminal"
	if readonly {
		u += "?readonly=1"
	}
	hdr := http.Header{}
	if c.token != "" {
		hdr.Set("Authorization", "Bearer "+c.token)
	}
	dctx, cancel := context.WithTimeout(ctx, c.hc.Timeout)
	conn, res, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: &http.Client{Transport: c.hc.Transport}})
	cancel()
	if err != nil {
		if res != nil && res.StatusCode != http.StatusSwitchingProtocols {
			b, _ := io.ReadAll(io.LimitReader(res.Body, maxResponse))
			err := restError(res.StatusCode, b)
			if ae := (*apperr.Error)(nil); errors.As(err, &ae) && ae.Code == apperr.CodePermissionDenied && !readonly {
				// Typing needs pods:write; watching does not.
				ae.Message += "; to watch without typing, attach with --readonly (needs only pods:read)"
			}
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		return unreachable(err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(maxResponse)

	ctx, cancelAll := context.WithCancelCause(ctx)
	defer cancelAll(nil)

	// A terminal on stdin goes raw, so every key reaches the agent; it is
	// restored however attach ends.
	fd, interactive := int(0), false
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd, interactive = int(f.Fd()), true
	}
	nl := "\n"
	if interactive {
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("put the terminal in raw mode: %w", err)
		}
		defer term.Restore(fd, old)
		nl = "\r\n"
		if readonly {
			fmt.Fprintf(g.stderr, "attached to pod %s read-only: what you type is not sent; detach with %s%s", podKey, detachName(detach), nl)
		} else {
			fmt.Fprintf(g.stderr, "attached to pod %s; detach with %s%s", podKey, detachName(detach), nl)
		}
	} else if readonly {
		fmt.Fprintf(g.stderr, "watching pod %s read-only: stdin is not sent%s", podKey, nl)
	}
	send := func(ev terminalEvent) error {
		b, _ := json.Marshal(ev)
		return conn.Write(ctx, websocket.MessageText, b)
	}
	if interactive && !readonly {
		resize := func() {
			if w, h, err := term.GetSize(fd); err == nil {
				_ = send(terminalEvent{Type: "resize", Cols: w, Rows: h})
			}
		}
		resize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-winch:
					resize()
				}
			}
		}()
	}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := stdin.Read(buf)
			if n > 0 {
				chunk := buf[:n]
				i := -1
				if interactive {
					i = strings.IndexByte(string(chunk), detach)
				}
				if i >= 0 {
					chunk = chunk[:i]
				}
				if len(chunk) > 0 && !readonly {
					if err := conn.Write(ctx, websocket.MessageBinary, chunk); err != nil {
						return
					}
				}
				if i >= 0 {
					cancelAll(errDetached)
					return
				}
			}
			if err != nil {
				// Without more input, the output goes on until the pod ends.
				return
			}
		}
	}()

	var end *terminalEvent
	for {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			break
		}
		if typ == websocket.MessageBinary {
			if _, err := g.stdout.Write(b); err != nil {
				return fmt.Errorf("write output: %w", err)
			}
			continue
		}
		var ev terminalEvent
		if json.Unmarshal(b, &ev) != nil {
			continue
		}
		switch ev.Type {
		case "exit":
			end = &ev
		case "error":
			fmt.Fprintf(g.stderr, "%s[runyard: %s]%s", nl, ev.Error, nl)
		}
	}
	switch {
	case errors.Is(context.Cause(ctx), errDetached):
		conn.Close(websocket.StatusNormalClosure, "detached")
		fmt.Fprintf(g.stderr, "%sdetached from pod %s; it keeps running: runyard pods attach %s%s", nl, podKey, podKey, nl)
		return nil
	case ctx.Err() != nil:
		conn.Close(websocket.StatusNormalClosure, "detached")
		return nil
	case end == nil:
		return &apperr.Error{Code: apperr.CodeUnavailable, Message: fmt.Sprintf("lost the terminal of pod %s; it may still run: attach again", podKey)}
	}
	return g.podEnded(podKey, end.Status, end.ExitCode, end.Reason, nl)
}

// podEnded says how a pod ended, on stderr after its output: a failed pod
// is the command's error ("pod X failed: exit code 4", exit 1), any other
// end a line of its own ("pod X terminated: exit code 0").
func (g *globals) podEnded(key, status string, exitCode *int, reason, nl string) error {
	var how []string
	if exitCode != nil {
		how = append(how, fmt.Sprintf("exit code %d", *exitCode))
	}
	// The runner's reason often repeats the exit code; show it only when
	// it adds something.
	if r := oneLine(reason); r != "" && (exitCode == nil || !strings.Contains(r, fmt.Sprintf("exit code %d", *exitCode))) {
		how = append(how, r)
	}
	if status == "" {
		status = "ended"
	}
	msg := fmt.Sprintf("pod %s %s", key, status)
	if len(how) > 0 {
		msg += ": " + strings.Join(how, ", ")
	}
	if status == "failed" {
		return errors.New(msg)
	}
	fmt.Fprintf(g.stderr, "%s%s", msg, nl)
	return nil
}

func detachName(b byte) string {
	if b >= 1 && b <= 26 {
		return "Ctrl-" + string(rune('A'+b-1))
	}
	return "Ctrl-" + string(rune(b^0x40))
}
