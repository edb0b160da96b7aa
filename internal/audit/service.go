package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
)

// DefaultRetention is how long entries are kept unless the server says
// otherwise (runyard server --audit-retention).
const DefaultRetention = 90 * 24 * time.Hour

// Filter selects entries of one organization. Empty fields select all.
type Filter struct {
	OrgID string
	// Since and Until bound CreatedAt: Since <= CreatedAt < Until.
	Since, Until    *time.Time
	ActorIDs        []string
	ActorPrincipals []identity.Principal
	ObjectIDs       []string
	ObjectTypes     []string
	Methods         []string
	// After and Limit page by Seq (oldest first); Limit 0 is no limit.
	After int64
	Limit int
}

// Store keeps the entries. There is no method to change or delete one: the
// only deletion is PruneAudit's retention.
type Store interface {
	// AppendAudit writes an entry on its own (a call that committed no
	// transaction). Entries of committed calls are written by the store's
	// transaction helper from the context's draft.
	AppendAudit(ctx context.Context, e *Entry) error
	// FindAudit returns the entries matching f, oldest first.
	FindAudit(ctx context.Context, f Filter) ([]*Entry, error)
	// PruneAudit deletes entries created before cutoff.
	PruneAudit(ctx context.Context, cutoff time.Time) (int64, error)
}

// Service reads and records the audit log.
type Service struct {
	Store Store
	Now   func() time.Time
}

// NewService returns a Service on st.
func NewService(st Store) *Service { return &Service{Store: st, Now: time.Now} }

// Finish ends a call's draft: it writes the entry with outcome unless it
// committed with the change. Errors are returned for the adapter to log; the
// call's own answer stands.
func (s *Service) Finish(ctx context.Context, d *Draft, outcome string) error {
	e, ok := d.Finish(ctx, outcome, s.Now())
	if !ok {
		return nil
	}
	// The call's context may be cancelled already (a client that went
	// away); its entry is written all the same.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.Store.AppendAudit(ctx, &e); err != nil {
		return fmt.Errorf("record audit entry of %s: %w", e.Method, err)
	}
	return nil
}

// ListRequest is a page of ListAuditLogs.
type ListRequest struct {
	Filter
	Page paging.Page
}

// List returns a page of the caller's organization's entries and the token
// of the next page ("" on the last). It needs audit:read
// (CodePermissionDenied otherwise); CodeInvalid names a bad filter field.
func (s *Service) List(ctx context.Context, req ListRequest) ([]*Entry, string, error) {
	c, err := identity.Require(ctx, identity.ScopeAuditRead)
	if err != nil {
		return nil, "", err
	}
	if req.Since != nil && req.Until != nil && !req.Since.Before(*req.Until) {
		return nil, "", apperr.Invalid("filter.since", "must be before filter.until")
	}
	f := req.Filter
	f.OrgID = c.OrgID
	f.After = req.Page.After
	f.Limit = req.Page.Limit + 1
	items, err := s.Store.FindAudit(ctx, f)
	if err != nil {
		return nil, "", err
	}
	items, next := paging.Trim(req.Page, items, func(e *Entry) int64 { return e.Seq })
	return items, next, nil
}

// Prune deletes entries older than retention.
func (s *Service) Prune(ctx context.Context, retention time.Duration) (int64, error) {
	return s.Store.PruneAudit(ctx, s.Now().Add(-retention))
}
