package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/pods"
)

// This file is /pods: create, list, get and terminate agent pods.

// maxBody bounds a request body: a pod's prompt is at most 32 KiB, its
// environment a few more.
const maxBody = 1 << 20

// created is an endpoint's result to render with 201 Created.
type created struct{ v any }

// noContent is the result of an endpoint that answers 204 with no body.
type noContent struct{}

// podDetailJSON is a pod as /pods shows it. /runners/{id}/pods keeps the
// seed's shorter podJSON. The pod's env is write-only: it may hold an
// agent's API key.
type podDetailJSON struct {
	Key           string `json:"key"`
	Status        string `json:"status"`
	DesiredStatus string `json:"desired_status"`
	AgentTypeID   string `json:"agent_type_id"`
	InitialPrompt string `json:"initial_prompt"`
	// RunnerID is the numeric id of the pod's runner, null while none took
	// it.
	RunnerID   *int64   `json:"runner_id"`
	Labels     []string `json:"labels"`
	Workdir    string   `json:"workdir"`
	Reason     string   `json:"reason"`
	ExitCode   *int     `json:"exit_code"`
	CreatedAt  string   `json:"created_at"`
	StartedAt  *string  `json:"started_at"`
	FinishedAt *string  `json:"finished_at"`
}

type podResponse struct {
	Pod podDetailJSON `json:"pod"`
}

type podListResponse struct {
	Pods   []podDetailJSON `json:"pods"`
	Total  int             `json:"total"`
	Limit  int             `json:"limit"`
	Offset int             `json:"offset"`
}

func podDetailView(p *pods.Pod) podDetailJSON {
	v := podDetailJSON{
		Key:           p.Key,
		Status:        string(p.Status),
		DesiredStatus: string(p.DesiredStatus),
		AgentTypeID:   p.AgentTypeID,
		InitialPrompt: p.InitialPrompt,
		Labels:        append([]string{}, p.Labels...),
		Workdir:       p.Workdir,
		Reason:        p.Reason,
		ExitCode:      p.ExitCode,
		CreatedAt:     formatTime(p.CreatedAt),
	}
	if p.RunnerID != "" && p.RunnerSeq != 0 {
		seq := p.RunnerSeq
		v.RunnerID = &seq
	}
	if p.StartedAt != nil {
		s := formatTime(*p.StartedAt)
		v.StartedAt = &s
	}
	if p.FinishedAt != nil {
		s := formatTime(*p.FinishedAt)
		v.FinishedAt = &s
	}
	return v
}

// createPodRequest is the body of POST /pods.
type createPodRequest struct {
	AgentTypeID   string            `json:"agent_type_id"`
	InitialPrompt string            `json:"initial_prompt"`
	RunnerID      *int64            `json:"runner_id"`
	Labels        []string          `json:"labels"`
	Env           map[string]string `json:"env"`
	Workdir       string            `json:"workdir"`
}

// createPod is POST /pods.
func (h *handler) createPod(ctx context.Context, r *http.Request) (any, error) {
	var req createPodRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	p, err := h.svc.Pods.Create(ctx, pods.CreateInput{
		AgentTypeID: req.AgentTypeID, InitialPrompt: req.InitialPrompt, RunnerID: req.RunnerID,
		Labels: req.Labels, Env: req.Env, Workdir: req.Workdir,
	})
	if err != nil {
		return nil, err
	}
	return created{podResponse{Pod: podDetailView(p)}}, nil
}

// listPods is GET /pods?status=&runner_id=&limit=&offset=.
func (h *handler) listPods(ctx context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	limit, offset, err := pageParams(q)
	if err != nil {
		return nil, err
	}
	var runner int64
	if raw := q.Get("runner_id"); raw != "" {
		if runner, err = strconv.ParseInt(raw, 10, 64); err != nil || runner <= 0 {
			return nil, apperr.Invalid("runner_id", "must be a positive integer, got %q", raw)
		}
	}
	items, total, err := h.svc.Pods.List(ctx, pods.ListInput{Status: pods.Status(q.Get("status")), RunnerID: runner, Limit: limit, Offset: offset})
	if err != nil {
		return nil, err
	}
	out := podListResponse{Pods: make([]podDetailJSON, 0, len(items)), Total: total, Limit: limit, Offset: offset}
	for _, p := range items {
		out.Pods = append(out.Pods, podDetailView(p))
	}
	return out, nil
}

// getPod is GET /pods/{key}.
func (h *handler) getPod(ctx context.Context, r *http.Request) (any, error) {
	p, err := h.svc.Pods.Get(ctx, r.PathValue("key"))
	if err != nil {
		return nil, err
	}
	return podResponse{Pod: podDetailView(p)}, nil
}

// terminatePod is POST /pods/{key}/terminate.
func (h *handler) terminatePod(ctx context.Context, r *http.Request) (any, error) {
	p, err := h.svc.Pods.Terminate(ctx, r.PathValue("key"))
	if err != nil {
		return nil, err
	}
	return podResponse{Pod: podDetailView(p)}, nil
}

// decodeBody decodes a request's JSON object into v, refusing unknown
// fields, trailing data, invalid UTF-8 and bodies over maxBody; errors name
// the field.
func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return bodyError(err)
	}
	// encoding/json would turn invalid UTF-8 into U+FFFD and store what the
	// client never sent; the Connect API refuses it, and so does this one.
	if !utf8.Valid(b) {
		return apperr.Invalid("body", "must be valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return apperr.Invalid("body", "must hold one JSON object and nothing after it")
	}
	return nil
}

func bodyError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var sizeErr *http.MaxBytesError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return apperr.Invalid(typeErr.Field, "must be %s, got a JSON %s", jsonType(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &typeErr):
		return apperr.Invalid("body", "must be a JSON object, got a JSON %s", typeErr.Value)
	case errors.As(err, &sizeErr):
		// writeError answers 413 for it: too large is not too many.
		return &apperr.Error{Code: apperr.CodeResourceExhausted, Field: "body", Message: fmt.Sprintf("must be at most %d bytes", sizeErr.Limit), Err: err}
	case errors.Is(err, io.EOF):
		return apperr.Invalid("body", "is empty; want a JSON object")
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.Invalid("body", "is not valid JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return apperr.Invalid(field, "is not a known field")
	}
	return apperr.Invalid("body", "cannot be read: %s", err.Error())
}

// jsonType names a Go kind as JSON calls it.
func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return fmt.Sprintf("a %s", kind)
}
