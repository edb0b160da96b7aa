package connectapi_test

import (
	"testing"

	"connectrpc.com/connect"

	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
)

// TestTokens_OwnKeys: a member (no admin scope) lists and revokes the API
// keys they own, and no one else's: another user's key and a service
// account's are not_found to them, and their list holds only their own.
// An admin still lists and revokes every key of the organization; a
// service account's key without admin is refused as before.
func TestTokens_OwnKeys(t *testing.T) {
	forEachUsersFixture(t, func(t *testing.T, f *usersFixture) {
		created, err := f.member.Tokens.CreateToken(ctx, connect.NewRequest(&runyardv1.CreateTokenRequest{Name: "laptop", Scopes: []string{"pods:read"}}))
		mustOK(t, err, "member creates a key")
		mine := created.Msg.GetToken().GetTokenId()
		adminsKey, err := f.admin.Tokens.CreateToken(ctx, connect.NewRequest(&runyardv1.CreateTokenRequest{Name: "admin's", Scopes: []string{"pods:read"}}))
		mustOK(t, err, "admin creates a key")
		sa, _ := mustCreateKey(t, f.install.client, "service", "runners:read")

		list := func(c *userClient, includeRevoked bool) map[string]bool {
			t.Helper()
			res, err := c.Tokens.ListTokens(ctx, connect.NewRequest(&runyardv1.ListTokensRequest{IncludeRevoked: includeRevoked}))
			mustOK(t, err, "list tokens")
			out := map[string]bool{}
			for _, k := range res.Msg.GetTokens() {
				out[k.GetTokenId()] = k.GetRevokedAt() != nil
			}
			return out
		}
		got := list(f.member, false)
		if len(got) != 2 || !contains(got, mine) {
			// The fixture minted the member's own first key; nothing else.
			t.Fatalf("member's list: %v, want their two keys with %s", got, mine)
		}
		if contains(got, adminsKey.Msg.GetToken().GetTokenId()) || contains(got, sa.GetTokenId()) {
			t.Fatalf("member's list holds another's key: %v", got)
		}
		if all := list(f.admin, false); !contains(all, mine) || !contains(all, sa.GetTokenId()) || !contains(all, adminsKey.Msg.GetToken().GetTokenId()) {
			t.Fatalf("admin's list misses keys: %v", all)
		}

		for what, id := range map[string]string{"another user's key": adminsKey.Msg.GetToken().GetTokenId(), "a service account's key": sa.GetTokenId()} {
			_, err := f.member.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: id}))
			wantCode(t, err, connect.CodeNotFound)
			_ = what
		}
		_, err = f.member.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: mine}))
		mustOK(t, err, "member revokes their own key")
		if revoked := list(f.member, true); !revoked[mine] {
			t.Fatalf("after revoking, the member's list with revoked keys: %v", revoked)
		}
		if active := list(f.member, false); contains(active, mine) {
			t.Fatalf("the revoked key is still listed as active: %v", active)
		}
		// With own, even an admin sees and revokes only their own keys.
		res, err := f.admin.Tokens.ListTokens(ctx, connect.NewRequest(&runyardv1.ListTokensRequest{Own: true}))
		mustOK(t, err, "admin lists their own keys")
		for _, k := range res.Msg.GetTokens() {
			if k.GetTokenId() == mine || k.GetTokenId() == sa.GetTokenId() {
				t.Fatalf("admin's own list holds %s (%s)", k.GetTokenId(), k.GetName())
			}
		}
		if len(res.Msg.GetTokens()) != 2 {
			t.Fatalf("admin's own list: %d keys, want their two", len(res.Msg.GetTokens()))
		}
		_, err = f.admin.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: sa.GetTokenId(), Own: true}))
		wantCode(t, err, connect.CodeNotFound)
		_, err = f.install.Tokens.ListTokens(ctx, connect.NewRequest(&runyardv1.ListTokensRequest{Own: true}))
		wantCode(t, err, connect.CodePermissionDenied)
		_, err = f.install.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: sa.GetTokenId(), Own: true}))
		wantCode(t, err, connect.CodePermissionDenied)

		// Revoking it again stays not_found-free for the owner (a no-op).
		_, err = f.member.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: mine}))
		mustOK(t, err, "revoke again")
		// The other keys are untouched, and the admin revokes another's.
		if all := list(f.admin, false); !contains(all, sa.GetTokenId()) || !contains(all, adminsKey.Msg.GetToken().GetTokenId()) {
			t.Fatalf("a member's refused revocation revoked: %v", all)
		}
		_, err = f.admin.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: sa.GetTokenId()}))
		mustOK(t, err, "admin revokes a service account's key")

		// A service account's key without admin lists nothing.
		_, roKey := mustCreateKey(t, f.install.client, "reader", "runners:read")
		ro := newUserClient(t, f.ts.URL, roKey)
		_, err = ro.Tokens.ListTokens(ctx, connect.NewRequest(&runyardv1.ListTokensRequest{}))
		wantCode(t, err, connect.CodePermissionDenied)
		_, err = ro.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: mine}))
		wantCode(t, err, connect.CodePermissionDenied)
	})
}

func contains(m map[string]bool, k string) bool {
	_, ok := m[k]
	return ok
}
