package kubiya

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/manifest"
)

// A manifest URL is
//
//	{server}/api/v3/manifests/{runner name}.yaml?org={org ID}&expires={unix seconds}&token={sealed}&sig={HMAC}
//
// The signature is the credential: downloading needs no Authorization, so
// the URL can go to `kubectl apply -f` or `curl` as it is. It binds the
// organization, the runner name, the expiry and the exchange token minted
// when the URL was made, sealed (AES-256-GCM under a server key, so neither
// the URL nor the database holds it in plaintext). A download mints nothing:
// every download of one URL returns the same manifest with that one token,
// so applying it twice cannot start a second daemon that would evict the
// first (one runner identity, one daemon).

const manifestPath = "/api/v3/manifests/"

// signingKeyName and sealingKeyName name the keys in the store's server
// keys.
const (
	signingKeyName = "kubiya-manifest-url"
	sealingKeyName = "kubiya-manifest-token"
)

// signer holds the signing key once it was read: it never changes, so one
// read per process is enough.
type signer struct {
	keys Keys
	mu   sync.Mutex
	key  []byte
	aead cipher.AEAD
}

func (s *signer) getKeys(ctx context.Context) ([]byte, cipher.AEAD, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		k, err := s.keys.ServerKey(ctx, signingKeyName)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest signing key: %w", err)
		}
		sk, err := s.keys.ServerKey(ctx, sealingKeyName)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest sealing key: %w", err)
		}
		block, err := aes.NewCipher(sk)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest sealing key: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest sealing key: %w", err)
		}
		s.key, s.aead = k, aead
	}
	return s.key, s.aead, nil
}

// sign returns the signature of a manifest URL. Each field is
// length-prefixed, so no two field lists share a message.
func (s *signer) sign(ctx context.Context, org, name string, expires int64, token string) (string, error) {
	key, _, err := s.getKeys(ctx)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "runyard manifest v2\n%d:%s\n%d:%s\n%d\n%d:%s", len(org), org, len(name), name, expires, len(token), token)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

// seal encrypts an exchange token for a URL of org and name.
func (s *signer) seal(ctx context.Context, org, name, token string) (string, error) {
	_, aead, err := s.getKeys(ctx)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(token)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal exchange token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(token), []byte(org+"\n"+name))), nil
}

// open decrypts what seal made; ok is false for anything else.
func (s *signer) open(ctx context.Context, org, name, sealed string) (token string, ok bool, err error) {
	_, aead, err := s.getKeys(ctx)
	if err != nil {
		return "", false, err
	}
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(b) < aead.NonceSize() {
		return "", false, nil
	}
	plain, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte(org+"\n"+name))
	if err != nil {
		return "", false, nil
	}
	return string(plain), true, nil
}

// manifestURL returns a signed URL of the runner's manifest with
// exchangeToken in it, sealed, that expires after ManifestTTL.
func (h *handler) manifestURL(ctx context.Context, base, org, name, exchangeToken string) (string, error) {
	expires := h.now().Add(h.svc.ManifestTTL).Unix()
	sealed, err := h.signer.seal(ctx, org, name, exchangeToken)
	if err != nil {
		return "", err
	}
	sig, err := h.signer.sign(ctx, org, name, expires, sealed)
	if err != nil {
		return "", err
	}
	q := url.Values{"org": {org}, "expires": {strconv.FormatInt(expires, 10)}, "token": {sealed}, "sig": {sig}}
	return base + manifestPath + url.PathEscape(name) + ".yaml?" + q.Encode(), nil
}

var errBadSignature = apperr.PermissionDenied("invalid manifest URL: its signature does not match; ask for a new one")

// downloadManifest checks the URL's signature and answers with the manifest
// as YAML, with the exchange token the URL carries: the same manifest on
// every download until the URL expires.
func (h *handler) downloadManifest(w http.ResponseWriter, r *http.Request) error {
	name, ok := strings.CutSuffix(r.PathValue("file"), ".yaml")
	q := r.URL.Query()
	org, sig, sealed := q.Get("org"), q.Get("sig"), q.Get("token")
	expires, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if !ok || name == "" || org == "" || sig == "" || sealed == "" || err != nil {
		return errBadSignature
	}
	want, err := h.signer.sign(r.Context(), org, name, expires, sealed)
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return errBadSignature
	}
	// Expiry is checked after the signature, so that a changed expiry is a
	// bad signature, not an expired URL.
	if !h.now().Before(time.Unix(expires, 0)) {
		// 410 has no apperr code: it is this URL's own state, not a domain
		// error, so it is answered here.
		writeJSON(w, http.StatusGone, errorJSON{
			Error: "the manifest URL expired; ask for a new one (POST /api/v3/runners/{name} or GET /v1/runners/{name}/manifest)",
			Code:  "expired",
		})
		return nil
	}
	token, ok, err := h.signer.open(r.Context(), org, name, sealed)
	if err != nil {
		return err
	}
	if !ok {
		return errBadSignature
	}
	// The signature stands for the caller who asked for the URL: act in
	// its organization. Reading is enough: the download mints nothing.
	ctx := identity.NewContext(r.Context(), &identity.Caller{
		OrgID:   org,
		Subject: identity.Subject{ID: "signed-manifest-url", Principal: identity.PrincipalServiceAccount},
		Scopes:  []identity.Scope{identity.ScopeRunnersRead},
	})
	base, err := h.serverURL()
	if err != nil {
		return err
	}
	rn, err := h.svc.Runners.GetByName(ctx, nameParam, name)
	if err != nil {
		return err
	}
	content, err := h.render(base, rn, token)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="`+manifest.ObjectName(rn.Name)+`.yaml"`)
	w.WriteHeader(http.StatusOK)
	w.Write(content)
	return nil
}
