package kubiya

import (
	"context"
	"crypto/hmac"
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
//	{server}/api/v3/manifests/{runner name}.yaml?org={org ID}&expires={unix seconds}&sig={HMAC}
//
// The signature is the credential: downloading needs no Authorization, so
// the URL can go to `kubectl apply -f` or `curl` as it is. It binds the
// organization, the runner name and the expiry, and each download mints a
// fresh exchange token, as issuing a manifest needs runners:write: whoever
// holds the URL until it expires can deploy that runner, nothing else.

const manifestPath = "/api/v3/manifests/"

// signingKeyName names the key in the store's server keys.
const signingKeyName = "kubiya-manifest-url"

// signer holds the signing key once it was read: it never changes, so one
// read per process is enough.
type signer struct {
	keys Keys
	mu   sync.Mutex
	key  []byte
}

func (s *signer) getKey(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		k, err := s.keys.ServerKey(ctx, signingKeyName)
		if err != nil {
			return nil, fmt.Errorf("manifest signing key: %w", err)
		}
		s.key = k
	}
	return s.key, nil
}

// sign returns the signature of a manifest URL. Each field is
// length-prefixed, so no two field lists share a message.
func (s *signer) sign(ctx context.Context, org, name string, expires int64) (string, error) {
	key, err := s.getKey(ctx)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "runyard manifest v1\n%d:%s\n%d:%s\n%d", len(org), org, len(name), name, expires)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

// manifestURL returns a signed URL of the runner's manifest that expires
// after ManifestTTL.
func (h *handler) manifestURL(ctx context.Context, base, org, name string) (string, error) {
	expires := h.now().Add(h.svc.ManifestTTL).Unix()
	sig, err := h.signer.sign(ctx, org, name, expires)
	if err != nil {
		return "", err
	}
	q := url.Values{"org": {org}, "expires": {strconv.FormatInt(expires, 10)}, "sig": {sig}}
	return base + manifestPath + url.PathEscape(name) + ".yaml?" + q.Encode(), nil
}

var errBadSignature = apperr.PermissionDenied("invalid manifest URL: its signature does not match; ask for a new one")

// downloadManifest checks the URL's signature and answers with a fresh
// rendering of the manifest as YAML.
func (h *handler) downloadManifest(w http.ResponseWriter, r *http.Request) error {
	name, ok := strings.CutSuffix(r.PathValue("file"), ".yaml")
	q := r.URL.Query()
	org, sig := q.Get("org"), q.Get("sig")
	expires, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if !ok || name == "" || org == "" || sig == "" || err != nil {
		return errBadSignature
	}
	want, err := h.signer.sign(r.Context(), org, name, expires)
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
	// The signature stands for the caller who asked for the URL: act in
	// its organization with what issuing a manifest needs.
	ctx := identity.NewContext(r.Context(), &identity.Caller{
		OrgID:   org,
		Subject: identity.Subject{ID: "signed-manifest-url", Principal: identity.PrincipalServiceAccount},
		Scopes:  []identity.Scope{identity.ScopeRunnersRead, identity.ScopeRunnersWrite},
	})
	base, err := h.baseURL(r)
	if err != nil {
		return err
	}
	rn, err := h.svc.Runners.GetByName(ctx, name)
	if err != nil {
		return err
	}
	content, err := h.render(ctx, base, rn)
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
