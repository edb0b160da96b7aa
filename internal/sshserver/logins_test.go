package sshserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/environments"
)

const (
	testEnvID = "11111111-1111-4111-8111-111111111111"
	testOrgID = "22222222-2222-4222-8222-222222222222"
)

// envStore holds one environment.
type envStore struct{ env *environments.Environment }

func (s envStore) FindEnvironmentOfAnyOrganization(_ context.Context, id string) (*environments.Environment, error) {
	if id != s.env.ID {
		return nil, apperr.NotFound("environment %q not found", id)
	}
	return s.env, nil
}

// auditStore keeps entries in memory.
type auditStore struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (s *auditStore) AppendAudit(_ context.Context, e *audit.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, *e)
	return nil
}

func (s *auditStore) FindAudit(context.Context, audit.Filter) ([]*audit.Entry, error) {
	return nil, nil
}
func (s *auditStore) PruneAudit(context.Context, time.Time) (int64, error) { return 0, nil }

func (s *auditStore) all() []audit.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]audit.Entry(nil), s.entries...)
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dial logs in as user with key and reports whether the login succeeded.
func dial(t *testing.T, addr, user string, key ssh.Signer) error {
	t.Helper()
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err == nil {
		c.Close()
	}
	return err
}

func TestServer_FailedLogins(t *testing.T) {
	good, bad := newSigner(t), newSigner(t)
	env := &environments.Environment{ID: testEnvID, OrgID: testOrgID}
	env.Spec.SSHPublicKeys = []environments.SSHPublicKey{{ID: "k", Value: string(ssh.MarshalAuthorizedKey(good.PublicKey()))}}
	audits := &auditStore{}
	var (
		clockMu sync.Mutex
		clock   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	)
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	srv := &Server{
		Access: &envaccess.Service{Store: envStore{env}}, Audit: &audit.Service{Store: audits, Now: now},
		HostKey: newSigner(t), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		LoginBurst: 3, LoginInterval: time.Minute, Now: now,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := ln.Addr().String()

	if err := dial(t, addr, testEnvID, good); err != nil {
		t.Fatalf("a login with the listed key: %v", err)
	}
	if err := dial(t, addr, testEnvID, bad); err == nil {
		t.Fatal("a key the environment does not list logged in")
	}
	if err := dial(t, addr, "33333333-3333-4333-8333-333333333333", good); err == nil {
		t.Fatal("a login as an unknown environment succeeded")
	}

	t.Run("Audited", func(t *testing.T) {
		var got []audit.Entry
		deadline := time.Now().Add(10 * time.Second)
		for len(got) < 2 && time.Now().Before(deadline) {
			got = audits.all()
			time.Sleep(10 * time.Millisecond)
		}
		if len(got) != 2 {
			t.Fatalf("audit entries %+v, want 2 failed logins (the successful login opened no channel)", got)
		}
		wrong, unknown := got[0], got[1]
		if wrong.Outcome == "not_found" {
			// Each is written when its client hung up: in either order.
			wrong, unknown = unknown, wrong
		}
		if wrong.Method != MethodLogin || wrong.Surface != audit.SurfaceSSH || wrong.Outcome != "permission_denied" ||
			wrong.OrgID != testOrgID || wrong.ObjectID != testEnvID || wrong.KeyID != ssh.FingerprintSHA256(bad.PublicKey()) ||
			wrong.ActorID != "" || wrong.ClientIP != "127.0.0.1" || !strings.HasPrefix(wrong.UserAgent, "SSH-2.0-Go") {
			t.Errorf("the wrong key's entry: %+v", wrong)
		}
		if unknown.Outcome != "not_found" || unknown.OrgID != "" || unknown.KeyID != ssh.FingerprintSHA256(good.PublicKey()) {
			t.Errorf("the unknown environment's entry: %+v", unknown)
		}
		for _, e := range got {
			for _, k := range []ssh.Signer{good, bad} {
				if b64 := base64.StdEncoding.EncodeToString(k.PublicKey().Marshal()); strings.Contains(e.KeyID+e.ObjectID+e.UserAgent, b64) {
					t.Errorf("an entry holds a key: %+v", e)
				}
			}
		}
	})

	t.Run("RateLimited", func(t *testing.T) {
		// Two failures so far; the third uses up the burst of 3.
		if err := dial(t, addr, testEnvID, bad); err == nil {
			t.Fatal("a key the environment does not list logged in")
		}
		// The server counts the failure once the client hung up, which
		// may be after dial returned: its audit entry comes after.
		deadline := time.Now().Add(10 * time.Second)
		for len(audits.all()) < 3 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if err := dial(t, addr, testEnvID, good); err == nil {
			t.Fatal("a login from an address past its failed logins was served")
		}
		if n := len(audits.all()); n != 3 {
			t.Errorf("%d audit entries, want 3: a refused address is not recorded again", n)
		}
		clockMu.Lock()
		clock = clock.Add(time.Minute)
		clockMu.Unlock()
		if err := dial(t, addr, testEnvID, good); err != nil {
			t.Fatalf("a login once a failure aged out: %v", err)
		}
	})
}
