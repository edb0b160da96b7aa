package identity

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/apperr"
)

// This file is the browser login of the CLI (`runyard login --web`), as
// RFC 8252 and 7636 describe for native apps: the CLI makes a secret
// verifier and sends only its SHA-256 (the challenge) through the browser;
// the signed-in user approves, which creates the user's own API key (capped
// by the user's role) that nobody can use yet; the browser carries a
// one-time code back to the CLI's loopback listener, and the CLI redeems the
// code with the verifier, which gives the key its first usable secret.
//
// A process that sees the code (in the browser's history, on the loopback
// port) cannot redeem it without the verifier, which never leaves the CLI;
// a code redeems once (the key it names then has no "unclaimed" expiry any
// more), and a code nobody redeems dies with the key's expiry. The code is
// signed with a server key every replica shares, so the approval and the
// redemption may land on different replicas; nothing else is stored.

// CLILoginTTL is how long an approval waits for the CLI to redeem it: the
// unclaimed key expires then.
const CLILoginTTL = 5 * time.Minute

// cliLoginKeyName names the server key that signs login codes.
const cliLoginKeyName = "cli-login-code-v1"

// cliLoginClaims is a code's signed payload.
type cliLoginClaims struct {
	OrgID     string `json:"o"`
	UserID    string `json:"u"`
	TokenID   string `json:"t"`
	Challenge string `json:"c"`
	Expiry    int64  `json:"x"`
}

// ValidateCLIChallenge checks a PKCE S256 challenge: the unpadded base64url
// of a SHA-256.
func ValidateCLIChallenge(field, challenge string) error {
	b, err := base64.RawURLEncoding.DecodeString(challenge)
	if err != nil || len(b) != sha256.Size {
		return apperr.Invalid(field, "must be the base64url SHA-256 of the CLI's verifier (43 characters)")
	}
	return nil
}

// CLIChallenge returns the challenge of verifier (S256).
func CLIChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ApproveCLILogin creates the calling user's API key for a CLI, with the
// scopes of the user's role, not usable until RedeemCLILogin, and returns
// the one-time code that redeems it. Only a user may (a session opened with
// an API key is not one: CodePermissionDenied). name says where the key is
// used ("runyard CLI on HOST").
func (s *Service) ApproveCLILogin(ctx context.Context, challenge, name string) (code string, t *Token, err error) {
	c, err := RequireAuthenticated(ctx)
	if err != nil {
		return "", nil, err
	}
	if c.UserID == "" {
		return "", nil, apperr.PermissionDenied("only a user may approve a CLI login: sign in with your account, not with an API key")
	}
	if err := ValidateCLIChallenge("challenge", challenge); err != nil {
		return "", nil, err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = "runyard CLI"
	}
	if r := []rune(name); len(r) > 100 {
		name = string(r[:100])
	}
	scopes := make([]string, 0, len(RoleScopes[c.Role]))
	for _, sc := range RoleScopes[c.Role] {
		scopes = append(scopes, string(sc))
	}
	exp := s.now().Add(CLILoginTTL)
	// The secret CreateAPIKey returns is dropped: the key gets its usable
	// secret only when the CLI redeems the code.
	t, _, err = s.CreateAPIKey(ctx, CreateAPIKeyInput{Name: name, Scopes: scopes, ExpiresAt: &exp})
	if err != nil {
		return "", nil, err
	}
	key, err := s.serverKey(ctx, cliLoginKeyName)
	if err != nil {
		return "", nil, fmt.Errorf("cli login key: %w", err)
	}
	b, err := json.Marshal(cliLoginClaims{OrgID: t.OrgID, UserID: c.UserID, TokenID: t.ID, Challenge: challenge, Expiry: exp.Unix()})
	if err != nil {
		return "", nil, fmt.Errorf("encode cli login code: %w", err)
	}
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + mac(key, payload), t, nil
}

// RedeemCLILogin gives the key of an approved CLI login its secret and
// returns it, once, to the holder of the verifier whose challenge the
// approval carried. Everything wrong with the code or the verifier is
// CodeInvalid naming "code" or "verifier" and saying what (a redeemed code,
// an expired one, a revoked key), as OAuth's token endpoint answers
// invalid_grant.
func (s *Service) RedeemCLILogin(ctx context.Context, code, verifier string) (string, *Token, error) {
	payload, sig, ok := strings.Cut(code, ".")
	if !ok || payload == "" || sig == "" {
		return "", nil, apperr.Invalid("code", "the login code is not one this server issued")
	}
	key, err := s.serverKey(ctx, cliLoginKeyName)
	if err != nil {
		return "", nil, fmt.Errorf("cli login key: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(mac(key, payload)), []byte(sig)) != 1 {
		return "", nil, apperr.Invalid("code", "the login code is not one this server issued")
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", nil, apperr.Invalid("code", "the login code is not one this server issued")
	}
	var cl cliLoginClaims
	if err := json.Unmarshal(raw, &cl); err != nil {
		return "", nil, apperr.Invalid("code", "the login code is not one this server issued")
	}
	now := s.now()
	if now.Unix() >= cl.Expiry {
		return "", nil, apperr.Invalid("code", "the login code expired: run `runyard login --web` again")
	}
	if subtle.ConstantTimeCompare([]byte(CLIChallenge(verifier)), []byte(cl.Challenge)) != 1 {
		return "", nil, apperr.Invalid("verifier", "the verifier does not match the login code's challenge")
	}
	keys, err := s.Store.FindTokens(ctx, TokenFilter{OrgID: cl.OrgID, OwnerUserID: cl.UserID, IncludeRevoked: true})
	if err != nil {
		return "", nil, fmt.Errorf("find the cli login key: %w", err)
	}
	var t *Token
	for _, k := range keys {
		if k.ID == cl.TokenID {
			t = k
		}
	}
	switch {
	case t == nil:
		return "", nil, apperr.Invalid("code", "the key of this login is gone")
	case t.RevokedAt != nil:
		return "", nil, apperr.Invalid("code", "the key of this login was revoked")
	case t.ExpiresAt == nil:
		// Redeemed: the claim below removed the unclaimed expiry.
		return "", nil, apperr.Invalid("code", "the login code was used already")
	case !t.ExpiresAt.After(now):
		return "", nil, apperr.Invalid("code", "the login code expired: run `runyard login --web` again")
	}
	secret := NewSecret(PrefixAPIKey)
	if err := s.Store.SetTokenHash(ctx, t.OrgID, t.ID, HashSecret(secret)); err != nil {
		return "", nil, fmt.Errorf("claim the cli login key: %w", err)
	}
	t.ExpiresAt = nil
	return secret, t, nil
}
