package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runyard/runyard/internal/runners"
)

// The runner view is this process's read model of runners for the API's
// reads (runners.Views: GetRunner, a page of ListRunners without filters):
// reading the row and decoding it was most of what a GetRunner cost beyond
// HTTP (issue 17). It holds runners by ID as last read, and the IDs of
// unfiltered pages; a read finds them there or reads the store and keeps
// what it read. The rest of the control plane reads the store, never the
// view: the fleet, placement and the domain services act on what the
// database holds now.
//
// It stays coherent because every change reaches it:
//
//   - a change made through this process's handles on the database drops
//     the runner when the transaction has committed, before the write
//     returns, so a read after a write here sees the write (handles on one
//     database in one process share one view: newRunnerView's registry);
//   - on PostgreSQL a change made by any other process (another replica)
//     notifies runyard_runners from a trigger at its commit (migration
//     00036), and the listener (postgres.ListenRunners) drops the runner on
//     every replica; the view is used only while the listener hears those
//     notices, and is emptied whenever it (re)connects, since notices sent
//     meanwhile are lost;
//   - a read that overlapped any drop keeps nothing (the generation), since
//     it may have read the row before the change the drop was for;
//   - an entry is trusted for viewTTL at most, which bounds what a change
//     that reached no one (a write to the SQLite file by another process)
//     can leave behind.
//
// A page's IDs change only when a runner of its organization is created
// or deleted (its order is the insertion sequence), so renewals and
// reports drop runners but keep pages.
type runnerView struct {
	// shared is set for a database other processes write (PostgreSQL):
	// the view is used only while listening > 0.
	shared    bool
	listening atomic.Int32
	// gen counts drops; a read notes it before reading the store and keeps
	// what it read only when no drop happened meanwhile.
	gen atomic.Uint64

	mu    sync.RWMutex
	byID  map[string]viewEntry
	pages map[string]map[pageKey]viewPage // by organization
	// npages counts the pages of every organization, up to viewMaxPages.
	npages int

	// key and refs are the registry's (views), under viewsMu.
	key  string
	refs int
}

type viewEntry struct {
	r *runners.Runner
	// memo is r's: a new one with every read of the runner.
	memo *runners.Memo
	at   time.Time
}

type pageKey struct {
	after int64
	limit int
}

type viewPage struct {
	ids []string
	// memo is the page's; what an adapter keeps there depends on its
	// runners' memos too (ViewPageMemo).
	memo *runners.Memo
	at   time.Time
}

const (
	// viewTTL bounds the life of an entry or a page.
	viewTTL = time.Minute
	// viewMaxRunners bounds the runners held: about 1 KiB each.
	viewMaxRunners = 1 << 16
	// viewMaxPages bounds the pages held: about 4 KiB each.
	viewMaxPages = 4096
)

var (
	viewsMu sync.Mutex
	views   = map[string]*runnerView{}
)

// UseRunnerView gives db the runner view of the database named key, shared
// with every other handle this process opened on it. shared says that other
// processes write the database too: the view is then used only while
// ListenRunners hears their changes. The sqlite and postgres packages call
// it when they open a database; a DB without a view reads the store.
func (db *DB) UseRunnerView(key string, shared bool) {
	viewsMu.Lock()
	defer viewsMu.Unlock()
	v := views[key]
	if v == nil {
		v = &runnerView{key: key, shared: shared}
		views[key] = v
	}
	v.refs++
	db.view = v
}

// releaseView gives the view back at Close; the last handle frees it.
func (db *DB) releaseView() {
	if db.view == nil {
		return
	}
	viewsMu.Lock()
	defer viewsMu.Unlock()
	if db.view.refs--; db.view.refs == 0 && views[db.view.key] == db.view {
		delete(views, db.view.key)
	}
}

// RunnerViewListening is called by the listener of other processes'
// changes when it starts (true) and stops (false) hearing them. Either way
// what the view holds is forgotten: notices may have been missed.
func (db *DB) RunnerViewListening(on bool) {
	v := db.view
	if v == nil {
		return
	}
	if on {
		v.clear()
		v.listening.Add(1)
		return
	}
	v.listening.Add(-1)
	v.clear()
}

// RunnerViewNotice applies a notice of the trigger of migration 00036:
// "org|id|m" when the runner was created or deleted (pages change), "org|id|u"
// for any other change.
func (db *DB) RunnerViewNotice(payload string) {
	v := db.view
	if v == nil {
		return
	}
	if list, ok := strings.CutPrefix(payload, "r|"); ok {
		// A batch of renewals (noticeRenewals).
		for item := range strings.SplitSeq(list, ",") {
			org, id, ok := strings.Cut(item, ":")
			if !ok {
				v.clear()
				return
			}
			v.drop(org, id, false)
		}
		return
	}
	org, rest, ok1 := strings.Cut(payload, "|")
	id, kind, ok2 := strings.Cut(rest, "|")
	if !ok1 || !ok2 {
		v.clear()
		return
	}
	v.drop(org, id, kind == "m")
}

func (v *runnerView) trusted() bool { return !v.shared || v.listening.Load() > 0 }

// drop forgets runner id, and the pages of its organization when members
// is set.
func (v *runnerView) drop(orgID, id string, members bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen.Add(1)
	delete(v.byID, id)
	if members {
		v.npages -= len(v.pages[orgID])
		delete(v.pages, orgID)
	}
}

// dropAll forgets the runners of batch (renewals).
func (v *runnerView) dropAll(batch []runners.Renewal) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen.Add(1)
	for _, r := range batch {
		delete(v.byID, r.RunnerID)
	}
}

func (v *runnerView) clear() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen.Add(1)
	v.byID, v.pages, v.npages = nil, nil, 0
}

// get returns the runner id of orgID, or nil.
func (v *runnerView) get(orgID, id string, now time.Time) *runners.Runner {
	r, _ := v.getMemo(orgID, id, now)
	return r
}

// getMemo returns the runner id of orgID and its memo, or nil.
func (v *runnerView) getMemo(orgID, id string, now time.Time) (*runners.Runner, *runners.Memo) {
	v.mu.RLock()
	e, ok := v.byID[id]
	v.mu.RUnlock()
	if !ok || e.r.OrgID != orgID || now.Sub(e.at) >= viewTTL {
		return nil, nil
	}
	return e.r, e.memo
}

// put keeps rs, read from the store at now, unless a drop happened since
// generation gen. The caller no longer changes them.
func (v *runnerView) put(gen uint64, now time.Time, rs ...*runners.Runner) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.putLocked(gen, now, rs)
}

func (v *runnerView) putLocked(gen uint64, now time.Time, rs []*runners.Runner) bool {
	if v.gen.Load() != gen {
		return false
	}
	if v.byID == nil || len(v.byID)+len(rs) > viewMaxRunners {
		// Forgetting everything at the bound is enough: runners in use
		// come back after one read each.
		v.byID = make(map[string]viewEntry)
	}
	for _, r := range rs {
		v.byID[r.ID] = viewEntry{r: r, memo: new(runners.Memo), at: now}
	}
	return true
}

// page returns the runners of a page of orgID from the view, or nil when
// it does not hold the page or any of its runners.
func (v *runnerView) page(orgID string, k pageKey, now time.Time) []*runners.Runner {
	rs, _, _ := v.pageMemo(orgID, k, now, false)
	return rs
}

// pageMemo is page, and with memos the runners' memos and the page's too.
func (v *runnerView) pageMemo(orgID string, k pageKey, now time.Time, memos bool) ([]*runners.Runner, []*runners.Memo, *runners.Memo) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	p, ok := v.pages[orgID][k]
	if !ok || now.Sub(p.at) >= viewTTL {
		return nil, nil, nil
	}
	out := make([]*runners.Runner, len(p.ids))
	var ms []*runners.Memo
	if memos {
		ms = make([]*runners.Memo, len(p.ids))
	}
	for i, id := range p.ids {
		e, ok := v.byID[id]
		if !ok || e.r.OrgID != orgID || e.r.Deleted() || now.Sub(e.at) >= viewTTL {
			return nil, nil, nil
		}
		out[i] = e.r
		if memos {
			ms[i] = e.memo
		}
	}
	return out, ms, p.memo
}

// putPage keeps a page and its runners, read at now, unless a drop
// happened since generation gen.
func (v *runnerView) putPage(gen uint64, now time.Time, orgID string, k pageKey, rs []*runners.Runner) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.putLocked(gen, now, rs) {
		return
	}
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	if v.pages == nil || v.npages >= viewMaxPages {
		// As for runners: pages in use come back after one read each.
		v.pages, v.npages = make(map[string]map[pageKey]viewPage), 0
	}
	m := v.pages[orgID]
	if m == nil {
		m = make(map[pageKey]viewPage)
		v.pages[orgID] = m
	}
	if _, ok := m[k]; !ok {
		v.npages++
	}
	m[k] = viewPage{ids: ids, memo: new(runners.Memo), at: now}
}

// cloneRunner is a deep copy of r: what the view holds is never handed out
// to be changed.
func cloneRunner(r *runners.Runner) *runners.Runner {
	out := *r
	out.Spec = cloneSpec(&r.Spec)
	out.Status = cloneStatus(&r.Status)
	out.Report = cloneReport(&r.Report)
	return &out
}

// ViewRunner is FindRunnerOrTombstone from the view (runners.Views).
func (db *DB) ViewRunner(ctx context.Context, orgID, id string) (*runners.Runner, error) {
	v := db.view
	if v == nil || !v.trusted() {
		return db.FindRunnerOrTombstone(ctx, orgID, id)
	}
	now := time.Now()
	if r := v.get(orgID, id, now); r != nil {
		return cloneRunner(r), nil
	}
	gen := v.gen.Load()
	r, err := db.FindRunnerOrTombstone(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	v.put(gen, now, cloneRunner(r))
	return r, nil
}

// ViewRunners is FindRunners from the view (runners.Views) for a page
// without filters; a filtered list reads the store.
func (db *DB) ViewRunners(ctx context.Context, f runners.Filter) ([]*runners.Runner, error) {
	v := db.view
	if v == nil || !v.trusted() || f.Limit <= 0 || len(f.CreatorIDs) > 0 || len(f.Kinds) > 0 ||
		len(f.Providers) > 0 || len(f.Phases) > 0 || len(f.DesiredPhases) > 0 || f.NameContains != "" {
		return db.FindRunners(ctx, f)
	}
	now := time.Now()
	k := pageKey{after: f.After, limit: f.Limit}
	if rs := v.page(f.OrgID, k, now); rs != nil {
		for i, r := range rs {
			rs[i] = cloneRunner(r)
		}
		return rs, nil
	}
	gen := v.gen.Load()
	rs, err := db.FindRunners(ctx, f)
	if err != nil {
		return nil, err
	}
	kept := make([]*runners.Runner, len(rs))
	for i, r := range rs {
		kept[i] = cloneRunner(r)
	}
	v.putPage(gen, now, f.OrgID, k, kept)
	return rs, nil
}

// ViewRunnerMemo is runners.MemoViews': the view's own runner, shared.
func (db *DB) ViewRunnerMemo(orgID, id string) (*runners.Runner, *runners.Memo, bool) {
	v := db.view
	if v == nil || !v.trusted() {
		return nil, nil, false
	}
	r, m := v.getMemo(orgID, id, time.Now())
	return r, m, r != nil
}

// ViewPageMemo is runners.MemoViews': an unfiltered page of the view's own
// runners, shared. A page's memo outlives changes of its runners (a page
// is kept while its members stay the same): what is kept in it must note
// the runners' memos it was made from, and be made again when they differ.
func (db *DB) ViewPageMemo(f runners.Filter) ([]*runners.Runner, []*runners.Memo, *runners.Memo, bool) {
	v := db.view
	if v == nil || !v.trusted() || f.Limit <= 0 {
		return nil, nil, nil, false
	}
	rs, ms, pm := v.pageMemo(f.OrgID, pageKey{after: f.After, limit: f.Limit}, time.Now(), true)
	return rs, ms, pm, rs != nil
}

// viewChanged drops runner id after a change through this handle
// (members: it was created or deleted).
func (db *DB) viewChanged(orgID, id string, members bool) {
	if db.view != nil {
		db.view.drop(orgID, id, members)
	}
}

// viewRenewed drops the runners of a batch of renewals.
func (db *DB) viewRenewed(batch []runners.Renewal) {
	if db.view != nil && len(batch) > 0 {
		db.view.dropAll(batch)
	}
}

// maxNotice bounds a renewals notice's payload, under PostgreSQL's 8,000
// bytes.
const maxNotice = 7900

// noticeRenewals tells the other replicas' views of a batch of renewals, in
// tx (so at its commit): the trigger of migration 00036 leaves renewals out,
// and a few notices naming the batch cost far less than one per row.
// SQLite's view is this process's alone and learns of them in viewRenewed.
func (db *DB) noticeRenewals(ctx context.Context, tx *sql.Tx, batch []runners.Renewal) error {
	if db.dialect.Name != "postgres" || len(batch) == 0 {
		return nil
	}
	var b strings.Builder
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `SELECT pg_notify('runyard_runners', $1)`, "r|"+b.String())
		b.Reset()
		if err != nil {
			return fmt.Errorf("notice renewals: %w", err)
		}
		return nil
	}
	for _, r := range batch {
		if b.Len()+len(r.OrgID)+len(r.RunnerID)+4 > maxNotice {
			if err := flush(); err != nil {
				return err
			}
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.OrgID)
		b.WriteByte(':')
		b.WriteString(r.RunnerID)
	}
	return flush()
}

// viewCleared forgets everything after a change of many runners.
func (db *DB) viewCleared() {
	if db.view != nil {
		db.view.clear()
	}
}

// RunnerViewLive reports whether the API's reads of runners come from the
// view now (on PostgreSQL: while the listener hears other replicas'
// changes).
func (db *DB) RunnerViewLive() bool { return db.view != nil && db.view.trusted() }
