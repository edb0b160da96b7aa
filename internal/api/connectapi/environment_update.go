package connectapi

import (
	"context"
	"fmt"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/environments"
)

func (h *environmentHandler) UpdateEnvironment(ctx context.Context, req *connect.Request[gitpodv1.UpdateEnvironmentRequest]) (*connect.Response[gitpodv1.UpdateEnvironmentResponse], error) {
	in, err := environmentUpdateInput(req.Msg)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	if _, err := h.svc.Update(ctx, in); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.UpdateEnvironmentResponse{}), nil
}

func (h *environmentHandler) CreateEnvironmentLogsToken(ctx context.Context, req *connect.Request[gitpodv1.CreateEnvironmentLogsTokenRequest]) (*connect.Response[gitpodv1.CreateEnvironmentLogsTokenResponse], error) {
	tok, err := h.svc.CreateLogsToken(ctx, req.Msg.GetEnvironmentId())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.CreateEnvironmentLogsTokenResponse{AccessToken: tok}), nil
}

// environmentUpdateInput converts an UpdateEnvironmentRequest; optional fields the
// client left out stay nil.
func environmentUpdateInput(m *gitpodv1.UpdateEnvironmentRequest) (environments.UpdateInput, error) {
	in := environments.UpdateInput{ID: m.GetEnvironmentId()}
	if md := m.GetMetadata(); md != nil {
		in.Name = md.Name
	}
	s := m.GetSpec()
	if c := s.GetContent(); c != nil {
		in.GitUsername, in.GitEmail, in.ContentSession = c.GitUsername, c.GitEmail, c.Session
		if c.Initializer != nil {
			// The initializer converts as CreateEnvironment's does, with
			// the same field names in errors.
			ci, err := environmentInput(&gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{
				Content: &gitpodv1.EnvironmentSpec_Content{Initializer: c.Initializer},
			}})
			if err != nil {
				return in, err
			}
			inits := ci.Spec.Content.Initializers
			if inits == nil {
				inits = []environments.Initializer{}
			}
			in.Initializers = &inits
		}
	}
	if af := s.GetAutomationsFile(); af != nil {
		in.AutomationsFilePath, in.AutomationsFileSession = af.AutomationsFilePath, af.Session
	}
	if d := s.GetDevcontainer(); d != nil {
		in.DevcontainerFilePath, in.DevcontainerSession = d.DevcontainerFilePath, d.Session
	}
	// An empty list of ports is no list: "nothing to update", as for SSH keys.
	if len(s.GetPorts()) > 0 {
		ports := make([]environments.Port, 0, len(s.GetPorts()))
		for i, p := range s.GetPorts() {
			a, err := enumName(fmt.Sprintf("spec.ports[%d].admission", i), p.GetAdmission())
			if err != nil {
				return in, err
			}
			ports = append(ports, environments.Port{Port: p.GetPort(), Name: p.GetName(), Admission: environments.Admission(a)})
		}
		in.Ports = &ports
	}
	for _, k := range s.GetSshPublicKeys() {
		in.SSHPublicKeys = append(in.SSHPublicKeys, environments.SSHPublicKeyChange{ID: k.GetId(), Value: k.Value})
	}
	if d := s.GetTimeout().GetDisconnected(); d != nil {
		if err := d.CheckValid(); err != nil {
			return in, apperr.Invalid("spec.timeout.disconnected", "is not a valid duration")
		}
		v := d.AsDuration()
		in.TimeoutDisconnected = &v
	}
	return in, nil
}
