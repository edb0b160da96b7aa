package runners

import (
	"context"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// File is one of a runner daemon's own files the control plane serves.
type File string

const (
	// FileLog is the daemon's recent log (status.logUrl): runners:read.
	FileLog File = "log"
	// FileSupportBundle is a bundle the daemon makes on demand
	// (status.supportBundleUrl): runners:write, since it shows the host's
	// paths and the daemon's configuration.
	FileSupportBundle File = "support-bundle"
)

// AuthorizeFile decides whether the caller may read file of runner id: the
// file's scope and a live runner of the caller's organization (another
// organization's is not_found). It returns the runner.
func (s *Service) AuthorizeFile(ctx context.Context, id string, file File) (*Runner, error) {
	scope := identity.ScopeRunnersRead
	if file == FileSupportBundle {
		scope = identity.ScopeRunnersWrite
	}
	c, err := identity.Require(ctx, scope)
	if err != nil {
		return nil, err
	}
	if file != FileLog && file != FileSupportBundle {
		return nil, apperr.Invalid("file", "must be %q or %q, not %q", FileLog, FileSupportBundle, file)
	}
	if err := identity.ValidateUUID("runner", id); err != nil {
		return nil, err
	}
	r, err := s.Store.FindRunnerByID(ctx, c.OrgID, id)
	if err != nil {
		return nil, notFound(id, err)
	}
	return r, nil
}
