package identity

import (
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/apperr"
)

// TestRoles_Scopes is the role table as a test: what each role may and may
// not do, over every scope.
func TestRoles_Scopes(t *testing.T) {
	grants := map[Role][]Scope{
		RoleAdmin:            KnownScopes,
		RoleMember:           {ScopeRunnersRead, ScopeEnvironmentsRead, ScopeEnvironmentsWrite, ScopePodsRead, ScopePodsWrite, ScopeSecretsRead, ScopeSecretsWrite},
		RoleRunnersAdmin:     {ScopeRunnersRead, ScopeRunnersWrite, ScopeEnvironmentsRead, ScopeEnvironmentsWrite, ScopePodsRead, ScopePodsWrite, ScopeSecretsRead, ScopeSecretsWrite},
		RoleAutomationsAdmin: {ScopeRunnersRead, ScopeEnvironmentsRead, ScopeEnvironmentsWrite, ScopePodsRead, ScopePodsWrite, ScopeSecretsRead, ScopeSecretsWrite},
		RoleAuditReader:      {ScopeRunnersRead, ScopeEnvironmentsRead, ScopePodsRead, ScopeAuditRead},
	}
	if len(grants) != len(KnownRoles) || len(RoleScopes) != len(KnownRoles) {
		t.Fatalf("the test covers %d roles, the table has %d, KnownRoles %d", len(grants), len(RoleScopes), len(KnownRoles))
	}
	for _, r := range KnownRoles {
		t.Run(string(r), func(t *testing.T) {
			for _, s := range KnownScopes {
				want := false
				for _, g := range grants[r] {
					want = want || g == s
				}
				if got := r.Has(s); got != want {
					t.Errorf("%s has %s = %v, want %v", r, s, got, want)
				}
				err := r.Allows([]Scope{s})
				if want && err != nil {
					t.Errorf("%s refuses a key with %s: %v", r, s, err)
				}
				if !want && apperr.CodeOf(err) != apperr.CodePermissionDenied {
					t.Errorf("%s allows a key with %s: %v", r, s, err)
				}
			}
		})
	}
}

func TestRoles_Parse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Role
		code apperr.Code
	}{
		{"admin", RoleAdmin, ""},
		{" runners-admin ", RoleRunnersAdmin, ""},
		{"audit-reader", RoleAuditReader, ""},
		{"", "", apperr.CodeInvalid},
		{"owner", "", apperr.CodeInvalid},
		{"Admin", "", apperr.CodeInvalid},
	} {
		got, err := ParseRole("role", tc.in)
		if tc.code != "" {
			if apperr.CodeOf(err) != tc.code || err == nil {
				t.Errorf("ParseRole(%q) = %v, %v; want %s", tc.in, got, err, tc.code)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRole(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if err := RoleMember.Allows([]Scope{ScopeRunnersRead, ScopeRunnersWrite}); err == nil || !strings.Contains(err.Error(), `"runners:write"`) {
		t.Errorf("member allows runners:write: %v", err)
	}
}
