package envaccess

import (
	"bytes"
	"context"
	"fmt"

	"golang.org/x/crypto/ssh"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
)

// Login is an SSH login to one environment: the SSH user is the
// environment's ID, and the key one its spec lists (spec.sshPublicKeys) or
// a user's own key (userkeys.go) whose user may enter it.
type Login struct {
	EnvironmentID string
	// Caller is who the login's sessions act as: the environment itself
	// (PRINCIPAL_ENVIRONMENT) for a key of its spec, or the key's user
	// (PRINCIPAL_USER, with their role), in the environment's organization,
	// with the key's SHA-256 fingerprint as its key ID, holding
	// environments:write for this environment only (OpenAs never opens
	// another).
	Caller *identity.Caller
	key    []byte
}

// ErrLoginRefused is the one answer to a login that is refused, whatever
// the reason (no such environment, a key it does not list): an SSH client
// learns nothing more.
var ErrLoginRefused = &apperr.Error{Code: apperr.CodePermissionDenied, Message: "permission denied"}

// RefusedLogin is a refused login as the audit log records it: the
// environment's organization and ID when there is such an environment, the
// key's fingerprint (never the key), and why (not_found: no such
// environment; permission_denied: it does not take the key). It is
// ErrLoginRefused for errors.Is.
type RefusedLogin struct {
	OrgID, EnvironmentID string
	Fingerprint          string
	Reason               apperr.Code
}

func (r *RefusedLogin) Error() string { return ErrLoginRefused.Error() }

// Unwrap makes it ErrLoginRefused.
func (r *RefusedLogin) Unwrap() error { return ErrLoginRefused }

// SSHLogin authorizes an SSH login as environment user with key. It is a
// system action (there is no caller before the login) and fails with a
// *RefusedLogin (which is ErrLoginRefused); other errors are internal.
func (s *Service) SSHLogin(ctx context.Context, user string, key ssh.PublicKey) (*Login, error) {
	refused := &RefusedLogin{Fingerprint: ssh.FingerprintSHA256(key), Reason: apperr.CodeNotFound}
	if identity.ValidateUUID("user", user) != nil || s.Store == nil {
		return nil, refused
	}
	refused.EnvironmentID = user
	e, err := s.Store.FindEnvironmentOfAnyOrganization(ctx, user)
	if apperr.Is(err, apperr.CodeNotFound) {
		return nil, refused
	}
	if err != nil {
		return nil, fmt.Errorf("find the environment of an SSH login: %w", err)
	}
	refused.OrgID, refused.Reason = e.OrgID, apperr.CodePermissionDenied
	wire := key.Marshal()
	if !listsKey(e, wire) {
		c, err := s.userLogin(ctx, e, refused.Fingerprint)
		if err != nil {
			return nil, err
		}
		if c == nil {
			return nil, refused
		}
		return &Login{EnvironmentID: e.ID, Caller: c, key: wire}, nil
	}
	return &Login{
		EnvironmentID: e.ID,
		Caller: &identity.Caller{
			OrgID:   e.OrgID,
			Subject: identity.Subject{Principal: identity.PrincipalEnvironment, ID: e.ID},
			TokenID: ssh.FingerprintSHA256(key),
			Scopes:  []identity.Scope{identity.ScopeEnvironmentsWrite},
		},
		key: wire,
	}, nil
}

// listsKey says e's spec lists the key whose wire form is wire.
func listsKey(e *environments.Environment, wire []byte) bool {
	for _, k := range e.Spec.SSHPublicKeys {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.Value))
		if err == nil && bytes.Equal(pk.Marshal(), wire) {
			return true
		}
	}
	return false
}

// OpenAs opens a session of an SSH login in its environment. The key must
// still be listed in the environment's spec (a key removed from it opens
// nothing more, also on a connection that logged in before); otherwise as
// Open.
func (s *Service) OpenAs(ctx context.Context, l *Login, req Request, source string) (Stream, error) {
	ctx = identity.NewContext(ctx, l.Caller)
	req.EnvironmentID = l.EnvironmentID
	return s.open(ctx, req, source, func(e *environments.Environment) error {
		if l.Caller.UserID != "" {
			// A user's key: the user must still hold it and still be
			// allowed in.
			c, err := s.userLogin(ctx, e, l.Caller.TokenID)
			if err != nil {
				return err
			}
			if c == nil || c.UserID != l.Caller.UserID {
				return apperr.PermissionDenied("the key %s no longer lets its user into this environment", l.Caller.TokenID)
			}
			return nil
		}
		if !listsKey(e, l.key) {
			return apperr.PermissionDenied("the key %s is no longer listed in the environment's spec.sshPublicKeys", l.Caller.TokenID)
		}
		return nil
	})
}
