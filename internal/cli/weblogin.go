package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/apperr"
)

// This file is `runyard login --web`: the browser login (the server's side
// is internal/identity/clilogin.go and internal/api/authhttp/clilogin.go).
// The CLI listens on a loopback port, sends the browser to the server's
// approval page with a state and the SHA-256 of a secret verifier, receives
// the one-time code on its port, and trades code and verifier for the key.
// Only this process knows the verifier, so nothing else that sees the code
// (another local process, the browser's history) can take the key.

// webLoginTimeout is how long the CLI waits for the approval: the server's
// unclaimed key lives as long (identity.CLILoginTTL).
const webLoginTimeout = 5 * time.Minute

// webLoginPath is the server's approval page.
const webLoginPath = "/auth/cli/approve"

func randomURLString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// serverHasWebLogin reports whether srv serves the browser login (an older
// server answers 404 for its token route), and, when it serves it but
// refuses it (412: it has no user accounts to approve with), its reason.
func (g *globals) serverHasWebLogin(ctx context.Context, srv string) (offered bool, refusal string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv+"/auth/cli/token", strings.NewReader("{}"))
	if err != nil {
		return false, ""
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := g.httpClient(10 * time.Second).Do(req)
	if err != nil {
		return false, ""
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusNotFound:
		return false, ""
	case http.StatusPreconditionFailed:
		var body struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&body)
		if body.Error == "" {
			body.Error = "the server refuses the browser login"
		}
		return false, body.Error
	}
	return true, ""
}

// webLogin runs the browser login against srv and returns the key.
func (g *globals) webLogin(ctx context.Context, srv string) (string, error) {
	verifier := randomURLString(32)
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	state := randomURLString(24)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen on a loopback port for the browser: %w", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	type answer struct {
		code string
		err  error
	}
	answers := make(chan answer, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		// Only the browser that carries our state may answer: another
		// local process cannot make the CLI take a code of its own.
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, "<!doctype html><title>runyard</title><p>This answer is not for the waiting runyard CLI (state mismatch).</p>")
			return
		}
		var a answer
		switch {
		case q.Get("error") != "":
			a.err = &apperr.Error{Code: apperr.CodePermissionDenied, Message: "the login was denied in the browser (" + q.Get("error") + "); the key was not saved"}
			io.WriteString(w, "<!doctype html><title>runyard</title><p>Denied. The runyard CLI stored nothing. You can close this tab.</p>")
		case q.Get("code") == "":
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, "<!doctype html><title>runyard</title><p>No code in this answer.</p>")
			return
		default:
			a.code = q.Get("code")
			io.WriteString(w, "<!doctype html><title>runyard</title><h1>Approved</h1><p>The runyard CLI received the approval for "+
				html.EscapeString(srv)+". You can close this tab.</p>")
		}
		select {
		case answers <- a:
		default:
		}
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()

	host, _ := os.Hostname()
	name := "runyard CLI"
	if host != "" {
		name += " on " + host
	}
	q := url.Values{"port": {fmt.Sprint(port)}, "state": {state}, "challenge": {challenge}, "name": {name}}
	link := srv + webLoginPath + "?" + q.Encode()
	fmt.Fprintf(g.stderr, "Open this page in a browser signed in to %s and approve the CLI:\n\n  %s\n\n", srv, link)
	if opened, err := openBrowser(link); err != nil {
		fmt.Fprintf(g.stderr, "(could not open a browser: %v)\n", err)
	} else if opened != "" {
		fmt.Fprintf(g.stderr, "(opened with %s)\n", opened)
	}
	fmt.Fprintf(g.stderr, "Waiting for the approval (Ctrl-C to give up; without a user account there, run `runyard login %s --web=false` and paste an API key)...\n", srv)

	wctx, cancel := context.WithTimeout(ctx, webLoginTimeout)
	defer cancel()
	var a answer
	select {
	case a = <-answers:
	case <-wctx.Done():
		if errors.Is(wctx.Err(), context.DeadlineExceeded) {
			return "", &apperr.Error{Code: apperr.CodeUnavailable, Message: fmt.Sprintf("no approval came within %s; run `runyard login --web` again", webLoginTimeout)}
		}
		return "", ctx.Err()
	}
	if a.err != nil {
		return "", a.err
	}
	return g.redeemWebLogin(ctx, srv, a.code, verifier)
}

// redeemWebLogin trades the code and the verifier for the key.
func (g *globals) redeemWebLogin(ctx context.Context, srv, code, verifier string) (string, error) {
	body, _ := json.Marshal(map[string]string{"code": code, "verifier": verifier})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv+"/auth/cli/token", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := g.httpClient(30 * time.Second).Do(req)
	if err != nil {
		return "", unreachable(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusOK {
		return "", restError(res.StatusCode, b)
	}
	var out struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Key == "" {
		return "", fmt.Errorf("the server's answer holds no key")
	}
	return out.Key, nil
}

// openBrowser opens link in a browser when one is there to open it: the
// command of RUNYARD_BROWSER or BROWSER (as gh takes GH_BROWSER and BROWSER),
// else the desktop's opener when a display is. It returns what it ran, ""
// when it opened nothing (a server over SSH: the URL printed is the way),
// and why a browser that was asked for could not start.
func openBrowser(link string) (string, error) {
	cmd, err := browserCommand(link, os.Getenv)
	if err != nil || cmd == nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go cmd.Wait()
	return strings.Join(cmd.Args[:len(cmd.Args)-1], " "), nil
}

// browserCommand is the command that opens link, nil when there is none.
// RUNYARD_BROWSER, else BROWSER, is a command line split as a shell splits
// words (quotes and backslashes, no expansion), so that `BROWSER="chromium
// --new-window"` works; the link is its last argument. The link is always
// one argument of its own, never parsed by a shell.
func browserCommand(link string, getenv func(string) string) (*exec.Cmd, error) {
	for _, name := range []string{"RUNYARD_BROWSER", "BROWSER"} {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			continue
		}
		words, err := splitWords(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return exec.Command(words[0], append(words[1:], link)...), nil
	}
	switch {
	case runtime.GOOS == "darwin":
		return exec.Command("open", link), nil
	case runtime.GOOS == "windows":
		return exec.Command("rundll32", "url.dll,FileProtocolHandler", link), nil
	case getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != "":
		if _, err := exec.LookPath("xdg-open"); err != nil {
			return nil, nil
		}
		return exec.Command("xdg-open", link), nil
	}
	return nil, nil
}

// splitWords splits s into words as a POSIX shell does before expansion:
// blanks separate words, single quotes keep everything, double quotes keep
// all but a backslash before " \ $ or `, and a backslash outside quotes
// keeps the next character.
func splitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote in %q", s)
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				w.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote in %q", s)
			}
			inWord = true
		case c == '\\':
			if i+1 < len(s) {
				i++
				w.WriteByte(s[i])
			}
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("no command in %q", s)
	}
	return words, nil
}
