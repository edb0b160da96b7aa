// Package sshkeys is users' own SSH public keys: a user registers keys,
// and the SSH server (internal/sshserver, through envaccess) lets such a
// key log in as any environment its user may enter. The rules (who may add,
// list and delete which key, which keys are good enough) are here.
package sshkeys

import (
	"context"
	"crypto/rsa"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// Key is one user's SSH public key.
type Key struct {
	ID     string
	UserID string
	Name   string
	// Fingerprint is ssh.FingerprintSHA256 of the key: a user holds a key
	// once, and logins look keys up by it.
	Fingerprint string
	// PublicKey is the key in authorized_keys form without a comment.
	PublicKey string
	CreatedAt time.Time
}

// Store is the storage of keys; internal/store implements it.
type Store interface {
	// CreateSSHKey fails with CodeConflict when the user holds the key
	// (its fingerprint) already, and CodeNotFound without such a user.
	CreateSSHKey(ctx context.Context, k *Key) error
	// FindSSHKeys returns a user's keys, oldest first.
	FindSSHKeys(ctx context.Context, userID string) ([]*Key, error)
	// FindSSHKeysByFingerprint returns every user's key with fingerprint.
	FindSSHKeysByFingerprint(ctx context.Context, fingerprint string) ([]*Key, error)
	// DeleteSSHKey deletes a user's key; it fails with CodeNotFound.
	DeleteSSHKey(ctx context.Context, userID, id string) error
}

// ObjectType names a key in the audit log.
const ObjectType = "ssh_key"

// MaxKeys is how many keys one user may hold.
const MaxKeys = 100

// Service manages the calling user's keys.
type Service struct {
	Store Store
	Now   func() time.Time
}

// requireUser returns the caller when it is a user (a session or a user's
// API key): keys are a person's, not a service account's.
func requireUser(ctx context.Context) (*identity.Caller, error) {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return nil, err
	}
	if c.UserID == "" {
		return nil, apperr.PermissionDenied("SSH keys belong to users: sign in, or use an API key a user created (this key is a service account's)")
	}
	return c, nil
}

// Parse validates one line of authorized_keys and returns the key, its
// normalized form (without comment) and its comment. field names the
// request field for errors.
func Parse(field, line string) (ssh.PublicKey, string, string, error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, "", "", apperr.Invalid(field, "is required: one line of authorized_keys, e.g. the content of ~/.ssh/id_ed25519.pub")
	}
	if strings.Contains(line, "PRIVATE KEY") {
		return nil, "", "", apperr.Invalid(field, "is a private key: give the public one (the .pub file), and keep the private key to yourself")
	}
	if strings.ContainsAny(line, "\r\n") {
		return nil, "", "", apperr.Invalid(field, "must be one key on one line")
	}
	pk, comment, opts, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, "", "", apperr.Invalid(field, "is not an SSH public key in authorized_keys form: %v", err)
	}
	if len(opts) > 0 || len(strings.TrimSpace(string(rest))) > 0 {
		return nil, "", "", apperr.Invalid(field, "must be one key without authorized_keys options")
	}
	switch pk.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoSKECDSA256:
	case ssh.KeyAlgoRSA:
		cpk, ok := pk.(ssh.CryptoPublicKey)
		if !ok {
			return nil, "", "", apperr.Invalid(field, "an RSA key this server cannot read")
		}
		if r, ok := cpk.CryptoPublicKey().(*rsa.PublicKey); !ok || r.N.BitLen() < 2048 {
			return nil, "", "", apperr.Invalid(field, "an RSA key must have at least 2048 bits")
		}
	default:
		return nil, "", "", apperr.Invalid(field, "key type %s is not accepted (ed25519, ecdsa, rsa of 2048 bits or more, or their security-key forms)", pk.Type())
	}
	return pk, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))), comment, nil
}

// Add registers a public key of the calling user.
func (s *Service) Add(ctx context.Context, publicKey, name string) (*Key, error) {
	c, err := requireUser(ctx)
	if err != nil {
		return nil, err
	}
	pk, normalized, comment, err := Parse("publicKey", publicKey)
	if err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = comment
	}
	if utf8.RuneCountInString(name) > 128 || strings.ContainsAny(name, "\r\n\x00") {
		return nil, apperr.Invalid("name", "must be at most 128 characters on one line")
	}
	have, err := s.Store.FindSSHKeys(ctx, c.UserID)
	if err != nil {
		return nil, fmt.Errorf("find SSH keys: %w", err)
	}
	if len(have) >= MaxKeys {
		return nil, apperr.FailedPrecondition("you hold %d SSH keys, the most a user may: delete one first (runyard ssh-keys delete)", len(have))
	}
	k := &Key{
		ID: uuid.NewString(), UserID: c.UserID, Name: name, Fingerprint: ssh.FingerprintSHA256(pk),
		PublicKey: normalized, CreatedAt: s.Now().UTC().Truncate(time.Microsecond),
	}
	if err := s.Store.CreateSSHKey(ctx, k); err != nil {
		if apperr.Is(err, apperr.CodeConflict) {
			return nil, apperr.Conflict("you registered the key %s already", k.Fingerprint)
		}
		return nil, err
	}
	return k, nil
}

// List returns the calling user's keys, oldest first.
func (s *Service) List(ctx context.Context) ([]*Key, error) {
	c, err := requireUser(ctx)
	if err != nil {
		return nil, err
	}
	return s.Store.FindSSHKeys(ctx, c.UserID)
}

// Delete removes one of the calling user's keys; another user's key is
// CodeNotFound, as one that does not exist.
func (s *Service) Delete(ctx context.Context, id string) error {
	c, err := requireUser(ctx)
	if err != nil {
		return err
	}
	if err := identity.ValidateUUID("sshKeyId", id); err != nil {
		return err
	}
	if err := s.Store.DeleteSSHKey(ctx, c.UserID, id); err != nil {
		if apperr.Is(err, apperr.CodeNotFound) {
			return apperr.NotFound("SSH key %q not found", id)
		}
		return err
	}
	return nil
}
