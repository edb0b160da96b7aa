package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/runyard/runyard/internal/api/releaseshttp"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/release"
	"github.com/runyard/runyard/internal/releases"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store"
)

// loadReleaseKey reads --release-public-key; none leaves publishing off.
func loadReleaseKey(path string) (release.PublicKey, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--release-public-key: %w", err)
	}
	k, err := release.ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("--release-public-key %s: %w", path, err)
	}
	return k, nil
}

// mountReleases serves runner releases and puts the release of a runner's
// channel in its desired state. A publish wakes the runners of every
// organization (through the bus, on every replica), since a release is the
// installation's.
func (s *Server) mountReleases(mux *http.ServeMux, st store.Store, idSvc *identity.Service, runnerSvc *runners.Service, orgChanged func(string)) {
	svc := &releases.Service{Store: st, PublicKey: s.releaseKey, Now: runnerSvc.Now}
	svc.Published = func(releases.Channel) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		orgs, err := st.FindOrganizations(ctx)
		if err != nil {
			s.log.Error("tell runners of a new release", "err", err)
			return
		}
		for _, o := range orgs {
			orgChanged(o.ID)
		}
	}
	s.releases = svc
	s.fleet.SetReleases(svc)
	releaseshttp.Mount(mux, idSvc, svc, s.log)
}
