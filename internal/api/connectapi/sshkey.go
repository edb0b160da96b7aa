package connectapi

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/internal/sshkeys"
)

// sshKeyHandler serves runyard.v1.SSHKeyService: a user's own SSH keys.
type sshKeyHandler struct {
	svc *sshkeys.Service
	log *slog.Logger
}

func sshKeyToProto(k *sshkeys.Key) *runyardv1.SSHKey {
	return &runyardv1.SSHKey{Id: k.ID, Name: k.Name, Fingerprint: k.Fingerprint, PublicKey: k.PublicKey, CreatedAt: timestamppb.New(k.CreatedAt)}
}

func (h *sshKeyHandler) AddSSHKey(ctx context.Context, req *connect.Request[runyardv1.AddSSHKeyRequest]) (*connect.Response[runyardv1.AddSSHKeyResponse], error) {
	k, err := h.svc.Add(ctx, req.Msg.GetPublicKey(), req.Msg.GetName())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runyardv1.AddSSHKeyResponse{SshKey: sshKeyToProto(k)}), nil
}

func (h *sshKeyHandler) ListSSHKeys(ctx context.Context, req *connect.Request[runyardv1.ListSSHKeysRequest]) (*connect.Response[runyardv1.ListSSHKeysResponse], error) {
	keys, err := h.svc.List(ctx)
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	res := &runyardv1.ListSSHKeysResponse{SshKeys: make([]*runyardv1.SSHKey, 0, len(keys))}
	for _, k := range keys {
		res.SshKeys = append(res.SshKeys, sshKeyToProto(k))
	}
	return connect.NewResponse(res), nil
}

func (h *sshKeyHandler) DeleteSSHKey(ctx context.Context, req *connect.Request[runyardv1.DeleteSSHKeyRequest]) (*connect.Response[runyardv1.DeleteSSHKeyResponse], error) {
	if err := h.svc.Delete(ctx, req.Msg.GetSshKeyId()); err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runyardv1.DeleteSSHKeyResponse{}), nil
}
