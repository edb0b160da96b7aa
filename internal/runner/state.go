package runner

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/runyard/runyard/internal/runner/statefile"
)

// state is what a runner keeps in its state directory: its access token and
// its X25519 key pair (files of mode 0600 in a directory of mode 0700), and a
// lock that keeps a second process off the same identity.
type state struct {
	dir  string
	lock *os.File
	Credentials
	key *ecdh.PrivateKey
}

// Credentials are the runner's identity on one control plane.
type Credentials struct {
	Server      string `json:"server"`
	AccessToken string `json:"accessToken"`
}

const (
	credentialsFile = "credentials.json"
	keyFile         = "runner.key"
	lockFile        = "lock"
)

// openState creates or opens dir and takes its lock. It fails when another
// process holds the lock.
func openState(dir string) (*state, error) {
	if dir == "" {
		return nil, errors.New("--state-dir is required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict state dir %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(f.Name())
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(b))
			return nil, fmt.Errorf("another runyard runner (pid %s) is using state dir %s: stop it first, or use another --state-dir", pid, dir)
		}
		return nil, fmt.Errorf("lock state dir %s: %w", dir, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	s := &state{dir: dir, lock: f}
	if err := s.loadKey(); err != nil {
		s.close()
		return nil, err
	}
	if err := s.loadCredentials(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *state) close() {
	if s.lock != nil {
		syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		s.lock.Close()
	}
}

func (s *state) path(name string) string { return filepath.Join(s.dir, name) }

// loadKey reads the key pair, generating it on first start.
func (s *state) loadKey() error {
	b, err := os.ReadFile(s.path(keyFile))
	if errors.Is(err, fs.ErrNotExist) {
		key, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("generate key pair: %w", err)
		}
		if err := writeSecret(s.path(keyFile), []byte(base64.StdEncoding.EncodeToString(key.Bytes())+"\n")); err != nil {
			return err
		}
		s.key = key
		return nil
	}
	if err != nil {
		return fmt.Errorf("read key: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%s is corrupt: %w", s.path(keyFile), err)
	}
	key, err := ecdh.X25519().NewPrivateKey(raw)
	if err != nil {
		return fmt.Errorf("%s is corrupt: %w", s.path(keyFile), err)
	}
	s.key = key
	return nil
}

func (s *state) loadCredentials() error {
	b, err := os.ReadFile(s.path(credentialsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read credentials: %w", err)
	}
	if err := json.Unmarshal(b, &s.Credentials); err != nil {
		return fmt.Errorf("%s is corrupt: %w", s.path(credentialsFile), err)
	}
	return nil
}

func (s *state) saveCredentials(c Credentials) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	// Another token may be another runner: the epochs of this one's
	// streams say nothing of it.
	if c.AccessToken != s.AccessToken {
		if err := s.removeFiles(epochsFile); err != nil {
			return err
		}
	}
	if err := writeSecret(s.path(credentialsFile), b); err != nil {
		return err
	}
	s.Credentials = c
	return nil
}

// forget removes the credentials of a runner that was deleted, so a restart
// asks for a new exchange token instead of failing on a dead one.
func (s *state) forget() error {
	return s.removeFiles(credentialsFile, epochsFile)
}

// removeFiles removes the state files names, which may be missing.
func (s *state) removeFiles(names ...string) error {
	for _, n := range names {
		if err := os.Remove(s.path(n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// writeSecret writes a file of mode 0600 atomically and durably.
func writeSecret(path string, data []byte) error {
	return statefile.WriteFile(path, data, 0o600)
}
