package sso

import (
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/identity"
)

func TestSafeReturnPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "/",
		"/":                      "/",
		"/environments?id=1#top": "/environments?id=1#top",
		"//evil.example/x":       "/",
		"/\\evil.example":        "/",
		"https://evil.example/":  "/",
		"javascript:alert(1)":    "/",
		"environments":           "/",
		"/a\r\nSet-Cookie: x=1":  "/",
	} {
		if got := SafeReturnPath(in); got != want {
			t.Errorf("SafeReturnPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecide(t *testing.T) {
	yes, no := true, false
	cfg := Config{Issuer: "https://id.example.com", ClientID: "c", ClientSecret: "s", AllowedDomains: []string{"Example.com"},
		RoleClaim: "groups", DefaultRole: identity.RoleMember,
		RoleMap: []RoleMapping{{"auditors", identity.RoleAuditReader}, {"admins", identity.RoleAdmin}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		claims Claims
		role   identity.Role
		reason string
	}{
		{"DefaultRole", Claims{Email: "A@example.com", EmailVerified: &yes}, identity.RoleMember, ""},
		{"NoVerifiedClaim", Claims{Email: "a@example.com"}, identity.RoleMember, ""},
		{"FirstMappedValueWins", Claims{Email: "a@example.com", Raw: map[string]any{"groups": []any{"admins", "auditors"}}}, identity.RoleAuditReader, ""},
		{"StringClaim", Claims{Email: "a@example.com", Raw: map[string]any{"groups": "admins"}}, identity.RoleAdmin, ""},
		{"Unverified", Claims{Email: "a@example.com", EmailVerified: &no}, "", "not verified"},
		{"NoEmail", Claims{}, "", "no email"},
		{"OtherDomain", Claims{Email: "a@example.com.evil.org"}, "", "may not sign in"},
		{"SubdomainIsOther", Claims{Email: "a@sub.example.com"}, "", "may not sign in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := cfg.Decide(tt.claims)
			if tt.reason != "" {
				if err == nil || !strings.Contains(err.Error(), tt.reason) {
					t.Fatalf("Decide: %v, want a refusal saying %q", err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Role != tt.role || d.Email != "a@example.com" {
				t.Errorf("decision %+v, want a@example.com as %s", d, tt.role)
			}
		})
	}
}
