// Package kubiya serves Kubiya's runner endpoints (seed 004) as plain JSON:
// list, describe and health of runners by name, creating a runner together
// with its Kubernetes manifest, and the download of that manifest through a
// signed, expiring URL. Clients authenticate with "Authorization: UserKey
// <key>" (or Bearer). Handlers only translate: rules live in the domain
// services, the manifest in internal/manifest.
package kubiya

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/api/apiauth"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/fleet"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/manifest"
	"github.com/runyard/runyard/internal/paging"
	"github.com/runyard/runyard/internal/runners"
)

// Keys gives the server keys every replica shares (store.KeyStore).
type Keys interface {
	// ServerKey returns the 32-byte key called name, creating it on first
	// use.
	ServerKey(ctx context.Context, name string) ([]byte, error)
}

// DefaultManifestTTL is how long a manifest URL stays valid.
const DefaultManifestTTL = time.Hour

// Services are the domain services behind the endpoints, and the options of
// the manifests they render.
type Services struct {
	Identity *identity.Service
	Runners  *runners.Service
	// Keys holds the key that signs manifest URLs; in the database, so that
	// a URL made by one replica downloads from any other.
	Keys Keys

	// ServerURL is the control plane URL put in manifests and manifest URLs:
	// the server's --public-url. Empty or loopback means no manifest is
	// made: a runner in a pod would dial the pod itself.
	ServerURL string
	// Image is the runner image of the StatefulSet; empty means
	// manifest.DefaultImage().
	Image string
	// Namespace is the Kubernetes namespace runners deploy to; empty means
	// manifest.DefaultNamespace.
	Namespace string
	// ManifestTTL is how long a manifest URL stays valid; zero means
	// DefaultManifestTTL.
	ManifestTTL time.Duration
	// RunnerTimeout is the silence after which a runner is not live, as the
	// fleet judges it; zero means fleet.DefaultTimeout.
	RunnerTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

type handler struct {
	svc    Services
	log    *slog.Logger
	signer *signer
}

// Mount registers the endpoints on mux.
func Mount(mux *http.ServeMux, svc Services, log *slog.Logger) {
	if svc.Namespace == "" {
		svc.Namespace = manifest.DefaultNamespace
	}
	if svc.ManifestTTL <= 0 {
		svc.ManifestTTL = DefaultManifestTTL
	}
	if svc.RunnerTimeout <= 0 {
		svc.RunnerTimeout = fleet.DefaultTimeout
	}
	if svc.Now == nil {
		svc.Now = time.Now
	}
	h := &handler{svc: svc, log: log, signer: &signer{keys: svc.Keys}}
	for _, rt := range h.routes() {
		mux.Handle(rt.pattern, rt.h)
	}
}

// Routes lists the patterns Mount registers; the authorization matrix test
// (internal/api/authzmatrix) checks that docs/authorization.md has each.
func Routes() []string {
	var out []string
	for _, rt := range (&handler{}).routes() {
		out = append(out, rt.pattern)
	}
	return out
}

type route struct {
	pattern string
	h       http.Handler
}

func (h *handler) routes() []route {
	return []route{
		{"GET /api/v3/runners", h.wrap(h.listRunners)},
		{"GET /v1/runners/{name}/describe", h.wrap(h.describeRunner)},
		{"GET /api/v3/runners/{name}/health", h.wrap(h.runnerHealth)},
		{"POST /api/v3/runners/{name}", h.wrap(h.createRunner)},
		{"GET /v1/runners/{name}/manifest", h.wrap(h.getManifest)},
		{"GET " + manifestPath + "{file}", h.wrap(h.downloadManifest)},
	}
}

type endpoint func(w http.ResponseWriter, r *http.Request) error

// wrap turns an endpoint's error into the JSON error response, and a panic
// into an internal error that is logged.
func (h *handler) wrap(e endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				h.log.ErrorContext(r.Context(), "handler panicked", "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				h.writeError(w, r, errors.New("panic"))
			}
		}()
		if err := e(w, r); err != nil {
			h.writeError(w, r, err)
		}
	})
}

// authenticate returns the request's context with its caller. A request
// without credentials goes on without a caller, and the domain refuses it
// with CodeUnauthenticated.
func (h *handler) authenticate(r *http.Request) (context.Context, error) {
	return apiauth.Authenticate(r.Context(), h.svc.Identity, r.Header)
}

// nameParam is the seed's name of the {name} path parameter, which errors
// about a bad name name. The domain checks the name after the caller's
// scope, so a caller without it learns nothing about the name it sent.
const nameParam = "runner_name"

func (h *handler) now() time.Time { return h.svc.Now().UTC() }

// runnerJSON is a runner in the list and describe responses.
type runnerJSON struct {
	Name string `json:"name"`
	// Version is what the runner last reported; empty before it connected.
	Version             string `json:"version"`
	Namespace           string `json:"namespace"`
	KubernetesNamespace string `json:"kubernetes_namespace"`
	// The healths are in the list only.
	RunnerHealth       *componentHealth `json:"runner_health,omitempty"`
	ToolManagerHealth  *componentHealth `json:"tool_manager_health,omitempty"`
	AgentManagerHealth *componentHealth `json:"agent_manager_health,omitempty"`
}

func (h *handler) runnerJSON(r *runners.Runner) runnerJSON {
	return runnerJSON{
		Name:                r.Name,
		Version:             r.Status.Version,
		Namespace:           h.svc.Namespace,
		KubernetesNamespace: h.svc.Namespace,
	}
}

func (h *handler) listRunners(w http.ResponseWriter, r *http.Request) error {
	ctx, err := h.authenticate(r)
	if err != nil {
		return err
	}
	all, err := h.allRunners(ctx)
	if err != nil {
		return err
	}
	out := h.withHealth(all, h.now())
	return writeJSON(w, http.StatusOK, out)
}

// allRunners reads every runner of the caller's organization, page by page:
// Kubiya's list has no paging.
func (h *handler) allRunners(ctx context.Context) ([]*runners.Runner, error) {
	page := paging.Page{Limit: paging.MaxSize}
	var all []*runners.Runner
	for {
		items, next, err := h.svc.Runners.List(ctx, runners.ListFilter{}, page)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == "" {
			return all, nil
		}
		if page, err = paging.Parse(next, paging.MaxSize); err != nil {
			return nil, err
		}
	}
}

func (h *handler) describeRunner(w http.ResponseWriter, r *http.Request) error {
	ctx, err := h.authenticate(r)
	if err != nil {
		return err
	}
	rn, err := h.svc.Runners.GetByName(ctx, nameParam, r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h.runnerJSON(rn))
}

func (h *handler) runnerHealth(w http.ResponseWriter, r *http.Request) error {
	ctx, err := h.authenticate(r)
	if err != nil {
		return err
	}
	rn, err := h.svc.Runners.GetByName(ctx, nameParam, r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h.healthOf(rn, h.now()))
}

type manifestJSON struct {
	Name            string `json:"name"`
	ManifestURL     string `json:"manifest_url"`
	ManifestContent string `json:"manifest_content,omitempty"`
}

// createRunner creates the runner unless it exists and answers with the URL
// of its manifest. It is idempotent, so 200 in both cases.
func (h *handler) createRunner(w http.ResponseWriter, r *http.Request) error {
	ctx, err := h.authenticate(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	base, err := h.serverURL()
	if err != nil {
		return err
	}
	// The runner is `runyard runner` in a Linux container: the same daemon
	// as on any Linux host, and gitpod.v1 has no Kubernetes provider. The
	// URL carries the exchange token Create returns; for a runner that
	// exists already, a new one.
	rn, token, err := h.svc.Runners.Create(ctx, runners.CreateInput{Name: name, NameField: nameParam, Provider: runners.ProviderLinuxHost})
	if apperr.Is(err, apperr.CodeConflict) {
		rn, token, err = h.svc.Runners.CreateTokenByName(ctx, nameParam, name)
	}
	if err != nil {
		return err
	}
	u, err := h.manifestURL(ctx, base, rn.OrgID, rn.Name, token)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, manifestJSON{Name: rn.Name, ManifestURL: u})
}

// getManifest answers with a fresh rendering of the runner's manifest and a
// fresh URL, both with one newly minted exchange token (the URL downloads
// the same manifest). Minting needs runners:write: a read-only key may see
// that the runner exists, not obtain its credentials.
func (h *handler) getManifest(w http.ResponseWriter, r *http.Request) error {
	ctx, err := h.authenticate(r)
	if err != nil {
		return err
	}
	base, err := h.serverURL()
	if err != nil {
		return err
	}
	rn, token, err := h.svc.Runners.CreateTokenByName(ctx, nameParam, r.PathValue("name"))
	if err != nil {
		return err
	}
	content, err := h.render(base, rn, token)
	if err != nil {
		return err
	}
	u, err := h.manifestURL(ctx, base, rn.OrgID, rn.Name, token)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, manifestJSON{Name: rn.Name, ManifestURL: u, ManifestContent: string(content)})
}

// render renders rn's manifest with exchange token token.
func (h *handler) render(base string, rn *runners.Runner, token string) ([]byte, error) {
	b, err := manifest.Kubernetes(manifest.Options{
		RunnerName:    rn.Name,
		ServerURL:     base,
		ExchangeToken: token,
		Namespace:     h.svc.Namespace,
		Image:         h.svc.Image,
	})
	if err != nil {
		return nil, apperr.Internal(err, "render manifest")
	}
	return b, nil
}

// serverURL is the control plane URL the runner dials and manifest URLs
// name. It is checked before anything is minted, so a refused request
// changes nothing.
func (h *handler) serverURL() (string, error) {
	u := strings.TrimRight(h.svc.ServerURL, "/")
	if u == "" {
		return "", apperr.FailedPrecondition("the control plane has no public URL, so a runner in a cluster would not know where to dial: " +
			"start it with --public-url set to the URL the cluster reaches it at (e.g. https://runyard.example.com)")
	}
	if err := manifest.CheckServerURL(u); err != nil {
		return "", apperr.FailedPrecondition("%s", err.Error())
	}
	return u, nil
}

type errorJSON struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// writeError answers with the status apperr's table gives the error's code.
// Only internal errors are logged, and their details stay in the log.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := apperr.As(err)
	if e.Code == apperr.CodeInternal {
		h.log.ErrorContext(r.Context(), "kubiya API", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	audit.Failed(r.Context(), string(e.Code))
	writeJSON(w, apperr.HTTPStatus(e.Code), errorJSON{Error: e.Public(), Code: string(e.Code)})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	// Manifest URLs hold '&': keep them readable.
	enc.SetEscapeHTML(false)
	// An encoding error after the header is sent can only be a broken
	// connection; there is no one left to tell.
	enc.Encode(v)
	return nil
}
