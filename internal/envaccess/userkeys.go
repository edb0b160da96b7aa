package envaccess

import (
	"context"
	"fmt"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/sshkeys"
	"github.com/runyard/runyard/internal/users"
)

// UserKeys is what a login with a user's own SSH key (internal/sshkeys)
// reads; the store is one.
type UserKeys interface {
	FindSSHKeysByFingerprint(ctx context.Context, fingerprint string) ([]*sshkeys.Key, error)
	FindUserByID(ctx context.Context, id string) (*users.User, error)
	FindMemberships(ctx context.Context, orgID, userID string) ([]*users.Membership, error)
}

// userLogin finds a user holding the key (by its fingerprint) who may
// enter e, and returns who the login acts as; nil when there is none. A
// user may enter their own environments (with a role that may use
// environments: environments:write) and, as an admin of e's organization,
// all of its environments.
func (s *Service) userLogin(ctx context.Context, e *environments.Environment, fingerprint string) (*identity.Caller, error) {
	if s.UserKeys == nil {
		return nil, nil
	}
	keys, err := s.UserKeys.FindSSHKeysByFingerprint(ctx, fingerprint)
	if err != nil {
		return nil, fmt.Errorf("find users' SSH keys: %w", err)
	}
	for _, k := range keys {
		c, err := s.userMayEnter(ctx, e, k.UserID)
		if err != nil || c != nil {
			if c != nil {
				c.TokenID = fingerprint
			}
			return c, err
		}
	}
	return nil, nil
}

// userMayEnter returns the caller of user userID in e's organization when
// the user may enter e, else nil.
func (s *Service) userMayEnter(ctx context.Context, e *environments.Environment, userID string) (*identity.Caller, error) {
	u, err := s.UserKeys.FindUserByID(ctx, userID)
	if apperr.Is(err, apperr.CodeNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find the user of an SSH key: %w", err)
	}
	if u.DisabledAt != nil {
		return nil, nil
	}
	ms, err := s.UserKeys.FindMemberships(ctx, e.OrgID, userID)
	if err != nil {
		return nil, fmt.Errorf("find the membership of an SSH key's user: %w", err)
	}
	if len(ms) == 0 {
		return nil, nil
	}
	role := ms[0].Role
	own := e.Creator == identity.Subject{Principal: identity.PrincipalUser, ID: userID}
	if !role.Has(identity.ScopeAdmin) && !(own && role.Has(identity.ScopeEnvironmentsWrite)) {
		return nil, nil
	}
	return &identity.Caller{
		OrgID:   e.OrgID,
		Subject: identity.Subject{Principal: identity.PrincipalUser, ID: userID},
		UserID:  userID,
		Role:    role,
		Scopes:  []identity.Scope{identity.ScopeEnvironmentsWrite},
	}, nil
}
