package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
)

// ServerKeys gives the control plane's own keys, the same on every replica
// sharing the database (store.KeyStore).
type ServerKeys interface {
	ServerKey(ctx context.Context, name string) ([]byte, error)
}

// IDTokenTTL is how long an ID token from IDToken is valid.
const IDTokenTTL = time.Hour

// IDTokenAlgorithm is the JWS algorithm of ID tokens: ECDSA P-256, which
// every OIDC relying party of note verifies.
const IDTokenAlgorithm = jose.ES256

// idTokenKeyName names the server key the ID-token signing key derives from.
const idTokenKeyName = "oidc-id-token-signing-v1"

// MaxAudiences bounds GetIDToken's audience list.
const MaxAudiences = 10

// IDTokenClaims are the claims of an ID token beyond the registered ones:
// what a relying party needs to tell callers apart.
type IDTokenClaims struct {
	jwt.Claims
	OrganizationID string    `json:"org_id"`
	Principal      Principal `json:"principal"`
}

// serverKey returns the server key called name, read from the store once:
// server keys never change, and a logs request checks a signature each time.
func (s *Service) serverKey(ctx context.Context, name string) ([]byte, error) {
	if k, ok := s.serverKeys.Load(name); ok {
		return k.([]byte), nil
	}
	if s.Keys == nil {
		return nil, fmt.Errorf("no server key store configured")
	}
	k, err := s.Keys.ServerKey(ctx, name)
	if err != nil {
		return nil, err
	}
	s.serverKeys.Store(name, k)
	return k, nil
}

// signingKey is the ID-token key: a P-256 key derived from the persisted
// server key, so every replica signs with the same key and a restart keeps
// it. The scalar is SHA-256(seed || counter) for the first counter that is a
// valid scalar (all but a 2^-32 fraction of seeds take counter 0).
func (s *Service) signingKey(ctx context.Context) (*ecdsa.PrivateKey, error) {
	seed, err := s.serverKey(ctx, idTokenKeyName)
	if err != nil {
		return nil, fmt.Errorf("ID-token signing key: %w", err)
	}
	for i := uint32(0); i < 16; i++ {
		h := sha256.New()
		h.Write(seed)
		_ = binary.Write(h, binary.BigEndian, i)
		if k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), h.Sum(nil)); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("ID-token signing key: no valid P-256 scalar derived")
}

// keyID names a public key in the JWKS: its RFC 7638 thumbprint, so a
// rotated key gets a new ID by itself.
func keyID(pub *ecdsa.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// JWKS returns the public keys that verify ID tokens, for
// /.well-known/jwks.json.
func (s *Service) JWKS(ctx context.Context) (*jose.JSONWebKeySet, error) {
	k, err := s.signingKey(ctx)
	if err != nil {
		return nil, err
	}
	kid, err := keyID(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	return &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &k.PublicKey, KeyID: kid, Algorithm: string(IDTokenAlgorithm), Use: "sig",
	}}}, nil
}

// IDTokenInput is a request for an ID token.
type IDTokenInput struct {
	Audience []string
}

// issuer is the iss claim: the control plane's public URL, where
// /.well-known/openid-configuration is served.
func (s *Service) issuer() (string, error) {
	if s.Issuer == nil {
		return "", fmt.Errorf("ID tokens: no issuer URL configured")
	}
	return strings.TrimRight(s.Issuer(), "/"), nil
}

// IDToken returns a signed JWT stating who the caller is (iss, sub, aud,
// exp, iat, nbf, jti, org_id, principal), which a third party verifies with
// the keys of JWKS. Any authenticated caller may get one for itself. It
// fails with CodeUnauthenticated and CodeInvalid (audience).
func (s *Service) IDToken(ctx context.Context, in IDTokenInput) (string, error) {
	c, err := RequireAuthenticated(ctx)
	if err != nil {
		return "", err
	}
	if c.Logs != nil {
		// A logs token reads logs; it must not become an identity that
		// other systems trust.
		return "", apperr.PermissionDenied("a logs token cannot get an ID token")
	}
	if len(in.Audience) == 0 {
		return "", apperr.Invalid("audience", "at least one audience is required")
	}
	if len(in.Audience) > MaxAudiences {
		return "", apperr.Invalid("audience", "at most %d audiences, got %d", MaxAudiences, len(in.Audience))
	}
	for i, a := range in.Audience {
		if strings.TrimSpace(a) == "" || len(a) > 512 || !utf8.ValidString(a) {
			return "", apperr.Invalid(fmt.Sprintf("audience[%d]", i), "must be 1 to 512 characters of text")
		}
	}
	iss, err := s.issuer()
	if err != nil {
		return "", err
	}
	k, err := s.signingKey(ctx)
	if err != nil {
		return "", err
	}
	kid, err := keyID(&k.PublicKey)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: IDTokenAlgorithm, Key: k},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		return "", fmt.Errorf("ID-token signer: %w", err)
	}
	now := s.Now().UTC()
	claims := IDTokenClaims{
		Claims: jwt.Claims{
			Issuer:    iss,
			Subject:   c.Subject.ID,
			Audience:  jwt.Audience(in.Audience),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			Expiry:    jwt.NewNumericDate(now.Add(IDTokenTTL)),
			ID:        uuid.NewString(),
		},
		OrganizationID: c.OrgID,
		Principal:      c.Subject.Principal,
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign ID token: %w", err)
	}
	return tok, nil
}
