package identity_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/users"
)

// TestCLILogin: an approval creates the user's key with the role's scopes
// that authenticates nobody until the code is redeemed with the verifier;
// it redeems once; a wrong verifier, a forged or expired code are refused
// naming the field; an API key's caller may not approve.
func TestCLILogin(t *testing.T) {
	s, db, c := newService(t)
	s.Keys = db
	res, err := s.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	org := res.Org.ID
	u := &users.User{ID: uuid.NewString(), Email: "cli@example.com", CreatedAt: c.t, UpdatedAt: c.t}
	if err := db.CreateUserWithMembership(ctx, u, &users.Membership{OrgID: org, UserID: u.ID, Role: identity.RoleMember, CreatedAt: c.t}); err != nil {
		t.Fatal(err)
	}
	as := identity.NewContext(ctx, &identity.Caller{OrgID: org, UserID: u.ID, Role: identity.RoleMember,
		Scopes: identity.RoleMember.Scopes(), Subject: identity.Subject{ID: u.ID, Principal: identity.PrincipalUser}})
	const verifier = "a-verifier-only-the-cli-knows-0123456789"
	challenge := identity.CLIChallenge(verifier)

	t.Run("ErrNotAUser", func(t *testing.T) {
		admin, err := s.Authenticate(ctx, res.Secret)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = s.ApproveCLILogin(identity.NewContext(ctx, admin), challenge, "cli")
		wantCode(t, err, apperr.CodePermissionDenied)
	})
	t.Run("ErrChallenge", func(t *testing.T) {
		_, _, err := s.ApproveCLILogin(as, "not-a-challenge", "cli")
		wantCode(t, err, apperr.CodeInvalid)
	})

	code, key, err := s.ApproveCLILogin(as, challenge, "runyard CLI on test")
	if err != nil {
		t.Fatal(err)
	}
	if key.Principal != identity.PrincipalUser || key.OwnerUserID != u.ID || key.ExpiresAt == nil {
		t.Fatalf("approved key %+v: want the user's, unclaimed (expiring)", key)
	}
	for _, tc := range []struct {
		name, code, verifier, field string
	}{
		{"ErrVerifier", code, "another-verifier", "verifier"},
		{"ErrForged", strings.Replace(code, ".", "x.", 1), verifier, "code"},
		{"ErrGarbage", "garbage", verifier, "code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.RedeemCLILogin(ctx, tc.code, tc.verifier)
			if wantCode(t, err, apperr.CodeInvalid); !strings.HasPrefix(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
		})
	}
	secret, got, err := s.RedeemCLILogin(ctx, code, verifier)
	if err != nil || got.ID != key.ID || !strings.HasPrefix(secret, identity.PrefixAPIKey) {
		t.Fatalf("redeem: %v %+v", err, got)
	}
	caller, err := s.Authenticate(ctx, secret)
	if err != nil || caller.UserID != u.ID || caller.TokenID != key.ID || caller.Has(identity.ScopeAdmin) {
		t.Fatalf("the redeemed key authenticates as %+v, %v", caller, err)
	}
	// After the unclaimed expiry: the claim removed it.
	c.t = c.t.Add(identity.CLILoginTTL + time.Minute)
	if _, err := s.Authenticate(ctx, secret); err != nil {
		t.Fatalf("the redeemed key after the approval's expiry: %v", err)
	}
	c.t = c.t.Add(-identity.CLILoginTTL - time.Minute)
	_, _, err = s.RedeemCLILogin(ctx, code, verifier)
	if wantCode(t, err, apperr.CodeInvalid); !strings.Contains(err.Error(), "used already") {
		t.Fatalf("second redemption: %v", err)
	}

	t.Run("ErrExpired", func(t *testing.T) {
		code, _, err := s.ApproveCLILogin(as, challenge, "late")
		if err != nil {
			t.Fatal(err)
		}
		c.t = c.t.Add(identity.CLILoginTTL)
		defer func() { c.t = c.t.Add(-identity.CLILoginTTL) }()
		_, _, err = s.RedeemCLILogin(ctx, code, verifier)
		if wantCode(t, err, apperr.CodeInvalid); !strings.Contains(err.Error(), "expired") {
			t.Fatalf("expired code: %v", err)
		}
	})
}
