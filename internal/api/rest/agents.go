package rest

import (
	"context"
	"net/http"

	"github.com/runyard/runyard/internal/pods"
)

// This file is /agents: the agent types pods can run.

// agentJSON is an agent type. Built-in types have no created_at.
type agentJSON struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Command   []string          `json:"command"`
	Env       map[string]string `json:"env"`
	Builtin   bool              `json:"builtin"`
	CreatedAt *string           `json:"created_at"`
}

type agentsResponse struct {
	BuiltinAgents []agentJSON `json:"builtin_agents"`
	CustomAgents  []agentJSON `json:"custom_agents"`
}

type agentResponse struct {
	Agent agentJSON `json:"agent"`
}

func agentView(a *pods.AgentType) agentJSON {
	v := agentJSON{ID: a.ID, Name: a.Name, Command: append([]string{}, a.Command...), Env: map[string]string{}, Builtin: a.Builtin}
	for k, val := range a.Env {
		v.Env[k] = val
	}
	if !a.Builtin {
		s := formatTime(a.CreatedAt)
		v.CreatedAt = &s
	}
	return v
}

// listAgents is GET /agents.
func (h *handler) listAgents(ctx context.Context, _ *http.Request) (any, error) {
	builtin, custom, err := h.svc.Pods.AgentTypes(ctx)
	if err != nil {
		return nil, err
	}
	out := agentsResponse{BuiltinAgents: make([]agentJSON, 0, len(builtin)), CustomAgents: make([]agentJSON, 0, len(custom))}
	for _, a := range builtin {
		out.BuiltinAgents = append(out.BuiltinAgents, agentView(a))
	}
	for _, a := range custom {
		out.CustomAgents = append(out.CustomAgents, agentView(a))
	}
	return out, nil
}

// createAgentRequest is the body of POST /agents.
type createAgentRequest struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Command []string          `json:"command"`
	Env     map[string]string `json:"env"`
}

// createAgent is POST /agents.
func (h *handler) createAgent(ctx context.Context, r *http.Request) (any, error) {
	var req createAgentRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	a, err := h.svc.Pods.CreateAgentType(ctx, pods.AgentTypeInput{ID: req.ID, Name: req.Name, Command: req.Command, Env: req.Env})
	if err != nil {
		return nil, err
	}
	return created{agentResponse{Agent: agentView(a)}}, nil
}

// getAgent is GET /agents/{id}: a built-in or custom agent type.
func (h *handler) getAgent(ctx context.Context, r *http.Request) (any, error) {
	a, err := h.svc.Pods.AgentType(ctx, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return agentResponse{Agent: agentView(a)}, nil
}

// updateAgentRequest is the body of PATCH /agents/{id}: the fields to
// change.
type updateAgentRequest struct {
	Name    *string           `json:"name"`
	Command []string          `json:"command"`
	Env     map[string]string `json:"env"`
}

// updateAgent is PATCH /agents/{id}.
func (h *handler) updateAgent(ctx context.Context, r *http.Request) (any, error) {
	var req updateAgentRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	a, err := h.svc.Pods.UpdateAgentType(ctx, r.PathValue("id"), pods.AgentTypeUpdate{Name: req.Name, Command: req.Command, Env: req.Env})
	if err != nil {
		return nil, err
	}
	return agentResponse{Agent: agentView(a)}, nil
}

// deleteAgent is DELETE /agents/{id}.
func (h *handler) deleteAgent(ctx context.Context, r *http.Request) (any, error) {
	if err := h.svc.Pods.DeleteAgentType(ctx, r.PathValue("id")); err != nil {
		return nil, err
	}
	return noContent{}, nil
}
