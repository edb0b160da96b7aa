package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"
)

// rawEcho is the program of both keystroke figures: the terminal in raw
// mode without its own echo, and a program that writes back each byte it
// reads. It says READY first: a key typed before stty ran would be echoed
// twice.
const rawEcho = "stty raw -echo; echo READY; exec cat"

// ptyEcho measures n keystrokes echoed by rawEcho in a local PTY.
func ptyEcho(n int) ([]time.Duration, error) {
	cmd := exec.Command("sh", "-c", rawEcho)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 80, Rows: 24})
	if err != nil {
		return nil, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait(); f.Close() }()
	return keystrokes(f, f, n)
}

// sshEcho measures n keystrokes echoed by rawEcho in a shell session of
// the environment, through the SSH server at sshAddr.
func sshEcho(ctx context.Context, url, sshAddr, envID string, n int) ([]time.Duration, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	body := fmt.Sprintf(`{"environmentId":%q,"spec":{"sshPublicKeys":[{"id":"bench","value":%q}]}}`, envID, pub)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/gitpod.v1.EnvironmentService/UpdateEnvironment", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("set the environment's SSH key: %d %s", res.StatusCode, b)
	}
	c, err := ssh.Dial("tcp", sshAddr, &ssh.ClientConfig{User: envID, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		return nil, err
	}
	in, err := sess.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := sess.Start(rawEcho); err != nil {
		return nil, err
	}
	return keystrokes(in, out, n)
}

// keystrokes waits for READY, then sends one byte at a time and waits for
// it to come back.
func keystrokes(w io.Writer, r io.Reader, n int) ([]time.Duration, error) {
	seen := ""
	buf := make([]byte, 256)
	for !strings.Contains(seen, "READY\n") {
		if len(seen) > 4096 {
			return nil, fmt.Errorf("the echo program did not start: %q", seen)
		}
		m, err := r.Read(buf)
		if err != nil {
			return nil, fmt.Errorf("the echo program did not start: %w (%q)", err, seen)
		}
		seen += string(buf[:m])
	}
	out := make([]time.Duration, 0, n)
	key := []byte{'x'}
	for i := range n + 20 {
		t0 := time.Now()
		if _, err := w.Write(key); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(r, buf[:1]); err != nil {
			return nil, err
		}
		if buf[0] != 'x' {
			return nil, fmt.Errorf("keystroke %d: echoed %q", i, buf[0])
		}
		if i >= 20 {
			out = append(out, time.Since(t0))
		}
	}
	return out, nil
}
