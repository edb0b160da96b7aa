package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
)

// floorLabel names the Connect floor figure.
const floorLabel = "connect floor"

// floorRunner is what the floor's GetRunner answers: a runner the size of
// those the benchmark creates.
func floorRunner(id string) *gitpodv1.Runner {
	now := timestamppb.New(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	return &gitpodv1.Runner{
		RunnerId: id,
		Name:     "bench-runner-000000",
		Kind:     gitpodv1.RunnerKind_RUNNER_KIND_LOCAL,
		Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST,
		Spec: &gitpodv1.RunnerSpec{
			Configuration: &gitpodv1.RunnerConfiguration{Metrics: &gitpodv1.MetricsConfiguration{}},
		},
		Status:    &gitpodv1.RunnerStatus{Phase: gitpodv1.RunnerPhase_RUNNER_PHASE_CREATED},
		Creator:   &gitpodv1.Subject{Id: "00000000-0000-0000-0000-000000000000", Principal: gitpodv1.Principal_PRINCIPAL_SERVICE_ACCOUNT},
		CreatedAt: now,
		UpdatedAt: now,
	}
}

// floorService answers GetRunner with a fixed runner and does nothing else:
// no authentication, no store, no audit.
type floorService struct {
	gitpodv1connect.UnimplementedRunnerServiceHandler
}

func (floorService) GetRunner(_ context.Context, req *connect.Request[gitpodv1.GetRunnerRequest]) (*connect.Response[gitpodv1.GetRunnerResponse], error) {
	return connect.NewResponse(&gitpodv1.GetRunnerResponse{Runner: floorRunner(req.Msg.GetRunnerId())}), nil
}

// runFloor measures GetRunner on a Connect handler that does no work of its
// own, on its own loopback server with the control plane's compression
// threshold: what connect-go and net/http cost per call on this machine,
// client and server together. No store or cache can take a GetRunner below
// it.
func runFloor(ctx context.Context, cfg config, errs *errorLog) error {
	if !wantsAny(cfg, floorLabel) {
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("floor listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(gitpodv1connect.NewRunnerServiceHandler(floorService{}, connect.WithCompressMinBytes(1024)))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	hc := newHTTPClient(cfg)
	defer hc.CloseIdleConnections()
	var opts []connect.ClientOption
	if !cfg.gzip {
		opts = append(opts, connect.WithAcceptCompression("gzip", nil, nil))
	}
	client := gitpodv1connect.NewRunnerServiceClient(hc, "http://"+ln.Addr().String(), opts...)
	const id = "7b5b1c2e-3f4a-4d5e-8f90-0a1b2c3d4e5f"
	call := func(ctx context.Context) error {
		res, err := client.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: id}))
		if err != nil {
			return err
		}
		if res.Msg.GetRunner().GetRunnerId() != id {
			return fmt.Errorf("floor GetRunner returned runner %q", res.Msg.GetRunner().GetRunnerId())
		}
		return nil
	}
	for _, c := range cfg.clients {
		if err := measure(ctx, cfg, floorLabel, c, call, errs); err != nil {
			return err
		}
	}
	return nil
}
