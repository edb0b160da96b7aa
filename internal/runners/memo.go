package runners

import (
	"context"
	"sync/atomic"

	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
)

// A Memo keeps what an adapter derives from one runner as a view holds it
// (the API's encoding of it), so that reads of a runner that did not change
// do not derive it again: encoding a runner for GetRunner cost about as much
// as reading it (issue 17). A view gives each runner it reads a new Memo and
// forgets it with the runner, on every change that reaches the view (on
// every replica), so a Memo never outlives the runner it was made for.
type Memo struct {
	v atomic.Pointer[any]
}

// Load returns what was stored, or nil.
func (m *Memo) Load() any {
	if p := m.v.Load(); p != nil {
		return *p
	}
	return nil
}

// Store keeps v, which readers share: it must not change afterwards.
func (m *Memo) Store(v any) { m.v.Store(&v) }

// MemoViews is what a view offers beyond Views: its own runners, shared and
// never to be changed, with their Memos, from memory only.
type MemoViews interface {
	// ViewRunnerMemo returns the runner id of orgID as the view holds it,
	// or ok false when it holds none (then ViewRunner reads the store).
	ViewRunnerMemo(orgID, id string) (r *Runner, m *Memo, ok bool)
	// ViewPageMemo returns an unfiltered page (f's OrgID, After and Limit)
	// as the view holds it, with the Memo of each runner and one of the
	// page, or ok false.
	ViewPageMemo(f Filter) (rs []*Runner, ms []*Memo, page *Memo, ok bool)
}

// GetShared is Get from the view in memory: the runner is shared and must
// not be changed; m is its Memo. ok is false when the view cannot answer
// (no view, not held, or an error Get would report): call Get then. It
// checks what Get checks first.
func (s *Service) GetShared(ctx context.Context, id string) (r *Runner, m *Memo, ok bool) {
	v, isView := s.Store.(MemoViews)
	if !isView {
		return nil, nil, false
	}
	c, err := identity.Require(ctx, identity.ScopeRunnersRead)
	if err != nil || identity.ValidateUUID("runnerId", id) != nil {
		return nil, nil, false
	}
	return v.ViewRunnerMemo(c.OrgID, id)
}

// ListShared is List without filters from the view in memory: the runners
// are shared and must not be changed; ms are their Memos and pm the page's.
// ok is false when the view cannot answer: call List then. It checks what
// List checks first.
func (s *Service) ListShared(ctx context.Context, page paging.Page) (rs []*Runner, ms []*Memo, pm *Memo, next string, ok bool) {
	v, isView := s.Store.(MemoViews)
	if !isView {
		return nil, nil, nil, "", false
	}
	c, err := identity.Require(ctx, identity.ScopeRunnersRead)
	if err != nil {
		return nil, nil, nil, "", false
	}
	rs, ms, pm, ok = v.ViewPageMemo(Filter{OrgID: c.OrgID, After: page.After, Limit: page.Limit + 1})
	if !ok {
		return nil, nil, nil, "", false
	}
	rs, next = paging.Trim(page, rs, func(r *Runner) int64 { return r.Seq })
	return rs, ms[:len(rs):len(rs)], pm, next, true
}
