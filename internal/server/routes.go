package server

import (
	"slices"

	"github.com/runyard/runyard/internal/api/authhttp"
	"github.com/runyard/runyard/internal/api/kubiya"
	"github.com/runyard/runyard/internal/api/logs"
	"github.com/runyard/runyard/internal/api/oidc"
	"github.com/runyard/runyard/internal/api/oidclogin"
	"github.com/runyard/runyard/internal/api/releaseshttp"
	"github.com/runyard/runyard/internal/api/rest"
	"github.com/runyard/runyard/internal/api/runnerfiles"
	"github.com/runyard/runyard/internal/console"
	"github.com/runyard/runyard/internal/replicaproxy"
)

// Routes lists the pattern of every HTTP route the server mounts besides
// the Connect services (which connectapi.APIServices and the runner
// protocol's descriptors list). The authorization matrix test
// (internal/api/authzmatrix) checks that docs/authorization.md documents
// each one: a surface mounted in open adds its routes here.
func Routes() []string {
	return slices.Concat(rest.Routes(), kubiya.Routes(), logs.Routes(), oidc.Routes(), authhttp.Routes(), oidclogin.Routes(), console.Routes(), authhttp.CLILoginRoutes(),
		[]string{"GET /healthz", "GET /metrics", "GET /version"}, runnerfiles.Routes(), releaseshttp.Routes(),
		[]string{replicaproxy.SessionRoute})
}
