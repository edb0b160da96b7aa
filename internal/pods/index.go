package pods

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/runners"
)

// This file is the placement index: the candidates of one organization kept
// between placements, arranged so that placing a pod costs a few heap
// operations instead of a pass over every runner. It decides exactly what
// place decides on the same candidates; where it cannot do so cheaply (no
// runner fits, so the reason must be counted, or many runners went silent
// at once) it runs place itself.
//
// A store keeps an Index only while it knows that the database holds what
// the index says: it builds one from the candidates (IndexCandidates) and
// their counts inside a placement transaction, tells it of every change to
// a count it commits (Adjust), and drops it on any other write it cannot
// account for.

// IndexCandidates says which runners an Index holds: every runner of the
// organization whose phase is ACTIVE or DEGRADED, whatever its last_seen.
// Whether such a runner is online depends on the time of each placement;
// a runner in any other phase is offline at any time, and a change of phase
// is a write that makes the store rebuild the index.
var IndexCandidates = []runners.Phase{runners.PhaseActive, runners.PhaseDegraded}

// IndexedPlaceFunc places p as PlaceFunc does, on the candidates of x. When
// the pod asks for a runner that x lacks, requested is that runner (nil when
// the organization has none with that number); it is in no phase that lets
// it take work.
type IndexedPlaceFunc func(p *Pod, x *Index, requested *Candidate) error

// Index is the candidates of one organization, indexed for placement. It is
// not safe for concurrent use; a store uses it under its write lock.
type Index struct {
	cands []*Candidate // by seq, as place takes them
	bySeq map[int64]*entry
	byID  map[string]*entry
	// classes group the runners that take work by what they offer (agent
	// types and labels); match caches the classes a pod's demands select.
	classes map[string]*class
	match   map[string][]*class
	// version counts changes of counts, so that a reason computed for a
	// pod that fits nowhere can be reused while nothing changed.
	version uint64
	noFit   map[string]noFit
}

// noFit is the reason a pod with some demands fits nowhere, as place gave
// it at version for any instant in [from, until): no runner that was
// online at from goes offline before until, and one that was offline stays
// so. until is zero when none was online.
type noFit struct {
	version     uint64
	timeout     time.Duration
	from, until time.Time
	reason      string
}

// holds reports whether m is the reason place gives at pl on x.
func (m noFit) holds(x *Index, pl placer) bool {
	return m.version == x.version && m.timeout == pl.timeout && !pl.now.Before(m.from) &&
		(m.until.IsZero() || pl.now.Before(m.until))
}

type entry struct {
	c *Candidate
	// class is nil for a runner that is draining: it never takes a pod.
	class *class
	// pos is the entry's place in class.heap, -1 while it is full.
	pos int
}

// class is the runners that take work with the same agent types and
// labels; heap holds those below their maximum, fewest pods first, then
// lowest seq: the order in which place prefers them.
type class struct {
	agentTypes, labels []string
	heap               []*entry
}

// NewIndex indexes cands, which must be the runners IndexCandidates selects,
// sorted by seq, each with its count of active pods.
func NewIndex(cands []*Candidate) *Index {
	x := &Index{
		cands:   cands,
		bySeq:   make(map[int64]*entry, len(cands)),
		byID:    make(map[string]*entry, len(cands)),
		classes: map[string]*class{},
		match:   map[string][]*class{},
		noFit:   map[string]noFit{},
	}
	for _, c := range cands {
		e := &entry{c: c, pos: -1}
		x.bySeq[c.Runner.Seq], x.byID[c.Runner.ID] = e, e
		if c.Runner.TakesNoPods() {
			continue
		}
		key := setKey(c.Runner.Report.AgentTypes) + "/" + setKey(c.Runner.Report.Labels)
		cl := x.classes[key]
		if cl == nil {
			cl = &class{agentTypes: c.Runner.Report.AgentTypes, labels: c.Runner.Report.Labels}
			x.classes[key] = cl
		}
		e.class = cl
		if c.Pods < c.Runner.Report.MaxPods {
			cl.push(e)
		}
	}
	return x
}

// setKey names a set of strings whatever their order and repetitions.
func setKey(s []string) string {
	s = slices.Clone(s)
	slices.Sort(s)
	return listKey(slices.Compact(s))
}

// listKey names a list of strings. Each is quoted, so that no two lists
// share a name whatever characters they hold: a runner's report may hold
// any.
func listKey(s []string) string {
	var b strings.Builder
	for _, v := range s {
		b.WriteString(strconv.Quote(v))
	}
	return b.String()
}

// demandKey names what a pod asks of a runner, its labels in their order
// (a reason names them so).
func demandKey(p *Pod) string {
	return strconv.Quote(p.AgentTypeID) + "/" + listKey(p.Labels)
}

// Len is the number of candidates.
func (x *Index) Len() int { return len(x.cands) }

// Has reports whether the runner with numeric id seq is a candidate.
func (x *Index) Has(seq int64) bool { return x.bySeq[seq] != nil }

// Adjust adds delta to the active pods of runner id, after the store
// committed a change to them; a runner that is not a candidate is ignored.
func (x *Index) Adjust(runnerID string, delta int) {
	if e := x.byID[runnerID]; e != nil && delta != 0 {
		e.c.Pods += delta
		x.changed(e)
	}
}

// changed puts e where its count now belongs.
func (x *Index) changed(e *entry) {
	x.version++
	if e.class == nil {
		return
	}
	room := e.c.Pods < e.c.Runner.Report.MaxPods
	switch {
	case room && e.pos < 0:
		e.class.push(e)
	case !room && e.pos >= 0:
		e.class.remove(e)
	case room:
		e.class.fix(e)
	}
}

// matching returns the classes whose runners have p's agent type and all
// its labels.
func (x *Index) matching(p *Pod) []*class {
	key := demandKey(p)
	if m, ok := x.match[key]; ok {
		return m
	}
	m := []*class{}
	for _, cl := range x.classes {
		if slices.Contains(cl.agentTypes, p.AgentTypeID) && hasLabels(cl.labels, p.Labels) {
			m = append(m, cl)
		}
	}
	x.match[key] = m
	return m
}

// maxSkipped bounds the offline runners one class may skip before placement
// falls back to place's full pass: runners that went silent are marked
// INACTIVE by the fleet within seconds, which rebuilds the index.
const maxSkipped = 32

// placeIndexed decides as place(p, seq, x.cands) would, with requested
// standing for the runner seq when x lacks it.
func (pl placer) placeIndexed(p *Pod, seq int64, x *Index, requested *Candidate) error {
	if seq != 0 {
		var c *Candidate
		var e *entry
		if e = x.bySeq[seq]; e != nil {
			c = e.c
		} else if requested != nil && requested.Runner.Seq == seq {
			c = requested
		}
		var cands []*Candidate
		if c != nil {
			cands = []*Candidate{c}
		}
		// place looks at the requested runner alone.
		if err := pl.place(p, seq, cands); err != nil {
			return err
		}
		if e != nil {
			x.changed(e)
		}
		return nil
	}
	var best *entry
	for _, cl := range x.matching(p) {
		e, ok := cl.firstOnline(pl)
		if !ok {
			return pl.placeAll(p, x)
		}
		if e != nil && (best == nil || before(e, best)) {
			best = e
		}
	}
	if best != nil {
		assign(p, best.c)
		x.changed(best)
		return nil
	}
	// Nothing fits: the reason needs every candidate counted. While no count
	// changes and no runner goes offline, a pod with the same demands gets
	// the same one: when the organization is full, every new pod waits, and
	// each would otherwise pass over every runner.
	key := demandKey(p)
	if m, ok := x.noFit[key]; ok && m.holds(x, pl) {
		p.RunnerID, p.RunnerSeq, p.Reason = "", 0, m.reason
		return nil
	}
	if err := pl.placeAll(p, x); err != nil {
		return err
	}
	if p.RunnerID == "" {
		x.noFit[key] = noFit{version: x.version, timeout: pl.timeout, from: pl.now, until: x.onlineUntil(pl), reason: p.Reason}
	}
	return nil
}

// onlineUntil returns the first instant after pl.now at which a runner
// online at pl.now is offline by the clock alone, zero when none is online.
func (x *Index) onlineUntil(pl placer) time.Time {
	var until time.Time
	for _, c := range x.cands {
		if c.Runner.Online(pl.now, pl.timeout) {
			if t := c.Runner.LastSeen.Add(pl.timeout); until.IsZero() || t.Before(until) {
				until = t
			}
		}
	}
	return until
}

// placeAll runs place on every candidate and indexes its choice.
func (pl placer) placeAll(p *Pod, x *Index) error {
	if err := pl.place(p, 0, x.cands); err != nil {
		return err
	}
	if e := x.byID[p.RunnerID]; p.RunnerID != "" && e != nil {
		x.changed(e)
	}
	return nil
}

// before is place's preference: fewer pods, then the lower seq.
func before(a, b *entry) bool {
	return a.c.Pods < b.c.Pods || (a.c.Pods == b.c.Pods && a.c.Runner.Seq < b.c.Runner.Seq)
}

// firstOnline returns the first runner of the heap that is online, nil when
// none is, and ok false when more than maxSkipped offline ones come first.
// The heap is left as it was.
func (cl *class) firstOnline(pl placer) (e *entry, ok bool) {
	if len(cl.heap) == 0 {
		return nil, true
	}
	if top := cl.heap[0]; top.c.Runner.Online(pl.now, pl.timeout) {
		return top, true
	}
	var skipped []*entry
	defer func() {
		for _, s := range skipped {
			cl.push(s)
		}
	}()
	for len(cl.heap) > 0 {
		top := cl.heap[0]
		if top.c.Runner.Online(pl.now, pl.timeout) {
			return top, true
		}
		if len(skipped) == maxSkipped {
			return nil, false
		}
		cl.remove(top)
		skipped = append(skipped, top)
	}
	return nil, true
}

// The heap: a binary min-heap by before, with each entry's position kept in
// it so that a changed count moves it in O(log n).

func (cl *class) push(e *entry) {
	e.pos = len(cl.heap)
	cl.heap = append(cl.heap, e)
	cl.up(e.pos)
}

func (cl *class) remove(e *entry) {
	i, last := e.pos, len(cl.heap)-1
	if i != last {
		cl.swap(i, last)
	}
	cl.heap[last] = nil
	cl.heap = cl.heap[:last]
	e.pos = -1
	if i != last {
		cl.fixAt(i)
	}
}

func (cl *class) fix(e *entry) { cl.fixAt(e.pos) }

func (cl *class) fixAt(i int) {
	if !cl.down(i) {
		cl.up(i)
	}
}

func (cl *class) swap(i, j int) {
	h := cl.heap
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}

func (cl *class) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !before(cl.heap[i], cl.heap[parent]) {
			return
		}
		cl.swap(i, parent)
		i = parent
	}
}

// down moves the entry at i down and reports whether it moved.
func (cl *class) down(i int) bool {
	start, n := i, len(cl.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && before(cl.heap[r], cl.heap[l]) {
			m = r
		}
		if !before(cl.heap[m], cl.heap[i]) {
			break
		}
		cl.swap(i, m)
		i = m
	}
	return i > start
}
