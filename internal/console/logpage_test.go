package console_test

import (
	"context"
	"net/http"
	"testing"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/testutil"
)

// TestConsole_LogPageOfAnotherEnvironment: a log page names its
// environment and the service whose log it shows; a service of another
// environment is not found, rather than shown under the wrong name.
func TestConsole_LogPageOfAnotherEnvironment(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			e := newEnv(t, backend)
			ctx := context.Background()
			runnerID, _ := e.createRunner(t, "logs-runner")
			envs := gitpodv1connect.NewEnvironmentServiceClient(http.DefaultClient, e.ts.URL)
			autos := gitpodv1connect.NewEnvironmentAutomationServiceClient(http.DefaultClient, e.ts.URL)
			classes, err := envs.ListEnvironmentClasses(ctx, admin(&gitpodv1.ListEnvironmentClassesRequest{
				Filter: &gitpodv1.ListEnvironmentClassesRequest_Filter{RunnerIds: []string{runnerID}}}))
			if err != nil || len(classes.Msg.GetEnvironmentClasses()) == 0 {
				t.Fatalf("environment classes: %v", err)
			}
			class := classes.Msg.GetEnvironmentClasses()[0].GetId()
			var ids []string
			for range 2 {
				res, err := envs.CreateEnvironment(ctx, admin(&gitpodv1.CreateEnvironmentRequest{
					Spec: &gitpodv1.EnvironmentSpec{Machine: &gitpodv1.EnvironmentSpec_Machine{Class: class}}}))
				if err != nil {
					t.Fatalf("create environment: %v", err)
				}
				ids = append(ids, res.Msg.GetEnvironment().GetId())
			}
			svc, err := autos.CreateService(ctx, admin(&gitpodv1.CreateServiceRequest{
				EnvironmentId: ids[1],
				Metadata:      &gitpodv1.ServiceMetadata{Reference: "web", Name: "Web"},
				Spec:          &gitpodv1.ServiceSpec{Commands: &gitpodv1.ServiceSpec_Commands{Start: "sleep 600"}},
			}))
			if err != nil {
				t.Fatalf("create service: %v", err)
			}
			svcID := svc.Msg.GetService().GetId()
			for _, c := range []struct {
				env  string
				want int
			}{
				// Its own environment's page: the service has not run yet.
				{ids[1], http.StatusPreconditionFailed},
				{ids[0], http.StatusNotFound},
			} {
				res, body := e.request(t, http.MethodGet, "/environments/"+c.env+"/logs/service/"+svcID, testutil.AdminToken, nil, nil)
				if res.StatusCode != c.want {
					t.Errorf("log page of the service under environment %s: status %d, want %d\n%s", c.env, res.StatusCode, c.want, body)
				}
			}
		})
	}
}
