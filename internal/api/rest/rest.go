// Package rest serves the REST API of AgentsMesh-style clients under
// /api/v1/orgs/{org}/: runners and the pods on them, as plain JSON with
// snake_case fields. Handlers only parse the request, call the domain
// services and render the result; every rule (scopes, validation, which
// runner is available) lives in the domain.
package rest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/runyard/runyard/internal/api/apiauth"
	"github.com/runyard/runyard/internal/api/jsonerr"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/fleet"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/replicaproxy"
	"github.com/runyard/runyard/internal/runners"
)

// Prefix is the root of every REST path; {org} is the organization's name.
const Prefix = "/api/v1/orgs/{org}"

// Services are the domain services behind the REST API.
type Services struct {
	Identity *identity.Service
	Runners  *runners.Service
	Pods     *pods.Service
	// RunnerTimeout is how long a runner may stay silent and still count as
	// online: the control plane's runner timeout. Zero means
	// fleet.DefaultTimeout.
	RunnerTimeout time.Duration
	// Proxy, when set, relays a pod's terminal or output to the replica
	// holding its runner's stream.
	Proxy *replicaproxy.Proxy
	// Access opens shells, commands and port forwards in environments
	// (envaccess.go).
	Access *envaccess.Service
}

// Mount registers the REST endpoints on mux.
func Mount(mux *http.ServeMux, svc Services, log *slog.Logger) {
	if svc.RunnerTimeout <= 0 {
		svc.RunnerTimeout = fleet.DefaultTimeout
	}
	h := &handler{svc: svc, log: log}
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
	// The literal "available" is more specific than {id}, so ServeMux routes
	// it here whatever the order of registration.
	return []route{
		{"GET " + Prefix + "/runners", h.wrap(h.listRunners)},
		{"GET " + Prefix + "/runners/available", h.wrap(h.availableRunners)},
		{"GET " + Prefix + "/runners/{id}", h.wrap(h.getRunner)},
		{"GET " + Prefix + "/runners/{id}/pods", h.wrap(h.runnerPods)},
		{"POST " + Prefix + "/pods", h.wrap(h.createPod)},
		{"GET " + Prefix + "/pods", h.wrap(h.listPods)},
		{"GET " + Prefix + "/pods/{key}", h.wrap(h.getPod)},
		{"POST " + Prefix + "/pods/{key}/terminate", h.wrap(h.terminatePod)},
		{"GET " + Prefix + "/pods/{key}/output", http.HandlerFunc(h.podOutput)},
		{"GET " + Prefix + "/pods/{key}/terminal", http.HandlerFunc(h.podTerminal)},
		{"GET " + Prefix + "/agents", h.wrap(h.listAgents)},
		{"POST " + Prefix + "/agents", h.wrap(h.createAgent)},
		{"GET " + Prefix + "/agents/{id}", h.wrap(h.getAgent)},
		{"PATCH " + Prefix + "/agents/{id}", h.wrap(h.updateAgent)},
		{"DELETE " + Prefix + "/agents/{id}", h.wrap(h.deleteAgent)},
		{"GET " + Prefix + "/environments/{id}/exec", http.HandlerFunc(h.environmentExec)},
		{"GET " + Prefix + "/environments/{id}/port-forward", http.HandlerFunc(h.environmentPortForward)},
	}
}

type handler struct {
	svc Services
	log *slog.Logger
}

// endpoint answers one authenticated request of the caller's organization:
// it returns the value to render with 200 (201 when wrapped in created), or
// an error.
type endpoint func(ctx context.Context, r *http.Request) (any, error)

// wrap authenticates the request, checks that {org} is the caller's
// organization, runs e and renders what it returns.
func (h *handler) wrap(e endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, err := h.authenticate(r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		v, err := e(ctx, r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		if c, ok := v.(created); ok {
			writeJSON(w, http.StatusCreated, c.v)
			return
		}
		if _, ok := v.(noContent); ok {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// authenticate returns the request's context with its caller. It fails with
// CodeUnauthenticated without a valid credential and with CodeNotFound when
// {org} is not the caller's organization, so that no caller learns which
// other organizations exist.
func (h *handler) authenticate(r *http.Request) (context.Context, error) {
	ctx, err := apiauth.Authenticate(r.Context(), h.svc.Identity, r.Header)
	if err != nil {
		return nil, err
	}
	if _, err := h.svc.Identity.RequireOrganization(ctx, r.PathValue("org")); err != nil {
		return nil, err
	}
	return ctx, nil
}

func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var sizeErr *http.MaxBytesError
	if errors.As(err, &sizeErr) {
		// A body over the limit is 413, which apperr's table (429 for
		// resource_exhausted, a rate limit) cannot say.
		e := apperr.As(err)
		jsonerr.JSON(w, http.StatusRequestEntityTooLarge, jsonerr.Body{Error: e.Public(), Code: string(e.Code)})
		return
	}
	jsonerr.Write(w, r, h.log, err)
}

func writeJSON(w http.ResponseWriter, status int, v any) { jsonerr.JSON(w, status, v) }
