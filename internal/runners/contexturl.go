package runners

import (
	"context"

	"github.com/runyard/runyard/internal/contexturl"
	"github.com/runyard/runyard/internal/identity"
)

// ParseContextURL parses a context URL into the repository and the branch
// or commit it names, as CreateEnvironment's contextUrl initializer does. It
// reads the URL alone and never contacts the forge, so it does not check
// access or that the branch exists. runnerID is optional; when set, the
// runner must exist. It needs ScopeRunnersRead and fails with CodeInvalid
// (naming contextUrl) and CodeNotFound.
func (s *Service) ParseContextURL(ctx context.Context, runnerID, url string) (*contexturl.Context, error) {
	c, err := identity.Require(ctx, identity.ScopeRunnersRead)
	if err != nil {
		return nil, err
	}
	if runnerID != "" {
		if err := identity.ValidateUUID("runnerId", runnerID); err != nil {
			return nil, err
		}
		if _, err := s.Store.FindRunnerByID(ctx, c.OrgID, runnerID); err != nil {
			return nil, notFound(runnerID, err)
		}
	}
	return contexturl.Parse("contextUrl", url)
}
