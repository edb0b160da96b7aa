package pods

import (
	"fmt"
	"slices"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/runners"
)

// This file is the scheduler: which runner a pod goes to, or why it waits.
// It is pure: the store runs it inside the transaction that stores the
// result, on counts no other placement can change meanwhile.

// Candidate is a runner as placement sees it.
type Candidate struct {
	Runner *runners.Runner
	// Pods is the number of active pods on the runner (Pod.Active); placing
	// a pod on it adds one.
	Pods int
}

// CandidateFilter says which runners a store loads as candidates: those of
// OrgID that are ACTIVE or DEGRADED and were seen after LiveAfter (runners
// that cannot be online need not be read), and the runner Seq whatever its
// state, so that a request for it can say what is wrong with it.
type CandidateFilter struct {
	OrgID     string
	LiveAfter time.Time
	Seq       int64
	// Indexed, when set, is the same placement for a store that keeps an
	// Index of the organization's candidates between placements: such a
	// store may call it, on an index that holds exactly what the database
	// holds, instead of loading the candidates and calling the PlaceFunc.
	Indexed IndexedPlaceFunc
	// Counted, when set, is the same placement for a store that counts the
	// active pods of each runner in the database and can find the runner
	// placement chooses with a query: such a store may call it instead of
	// loading the candidates and calling the PlaceFunc.
	Counted CountedPlaceFunc
}

// PlaceFunc places p among cands, sorted by Seq: it sets p.RunnerID,
// p.RunnerSeq and p.Reason and counts the pod on the chosen candidate. An
// error aborts the store's transaction.
type PlaceFunc func(p *Pod, cands []*Candidate) error

// placer places pods at one instant.
type placer struct {
	now     time.Time
	timeout time.Duration
}

// filter returns the candidates a store must load for org; seq is a
// requested runner, zero for any.
func (pl placer) filter(orgID string, seq int64) CandidateFilter {
	return CandidateFilter{OrgID: orgID, LiveAfter: pl.now.Add(-pl.timeout), Seq: seq,
		Indexed: func(p *Pod, x *Index, requested *Candidate) error {
			return pl.placeIndexed(p, seq, x, requested)
		},
		Counted: func(p *Pod, find Finder) error {
			return pl.placeCounted(p, seq, find)
		}}
}

// refusal says why runner c cannot take p now, or "" when it can.
func (pl placer) refusal(c *Candidate, p *Pod) string {
	r := c.Runner
	switch {
	case !r.Online(pl.now, pl.timeout):
		return "it is offline"
	case r.Draining():
		return "it is draining"
	case r.PodManagerFault() != "":
		return "its pod manager is unhealthy: " + r.PodManagerFault()
	case !slices.Contains(r.Report.AgentTypes, p.AgentTypeID):
		return fmt.Sprintf("it does not have agent type %q", p.AgentTypeID)
	}
	if missing := missingLabels(r.Report.Labels, p.Labels); len(missing) > 0 {
		return fmt.Sprintf("it lacks labels %v", missing)
	}
	if c.Pods >= r.Report.MaxPods {
		return fmt.Sprintf("it is full (%d of %d pods)", c.Pods, r.Report.MaxPods)
	}
	return ""
}

// hasLabels reports whether have holds every label of want.
func hasLabels(have, want []string) bool {
	for _, l := range want {
		if !slices.Contains(have, l) {
			return false
		}
	}
	return true
}

func missingLabels(have, want []string) []string {
	var out []string
	for _, l := range want {
		if !slices.Contains(have, l) {
			out = append(out, l)
		}
	}
	return out
}

// place puts p on the runner with numeric id seq, or on the best runner
// when seq is zero: online, not draining, with p's agent type and all its
// labels, below its maximum; the fewest pods first, then the lowest seq.
// When none fits, p stays without a runner and p.Reason says which step
// left no runner. A requested runner that cannot take p is an error.
func (pl placer) place(p *Pod, seq int64, cands []*Candidate) error {
	if seq != 0 {
		i := slices.IndexFunc(cands, func(c *Candidate) bool { return c.Runner.Seq == seq })
		if i < 0 {
			return apperr.Invalid("runner_id", "no runner %d", seq)
		}
		c := cands[i]
		if why := pl.refusal(c, p); why != "" {
			return apperr.FailedPrecondition("runner %d (%s) cannot take the pod: %s", seq, c.Runner.Name, why)
		}
		assign(p, c)
		return nil
	}
	// One pass that counts, rather than collects, each step's runners: a
	// pod that fits nowhere looks at every runner of the organization.
	var t Tally
	var best *Candidate
	for _, c := range cands {
		r := c.Runner
		if !r.Online(pl.now, pl.timeout) {
			continue
		}
		t.Online++
		if r.TakesNoPods() {
			continue
		}
		t.Working++
		if !slices.Contains(r.Report.AgentTypes, p.AgentTypeID) {
			continue
		}
		t.WithAgent++
		if !hasLabels(r.Report.Labels, p.Labels) {
			continue
		}
		t.Fitting++
		t.Pods, t.Capacity = t.Pods+c.Pods, t.Capacity+r.Report.MaxPods
		if c.Pods < r.Report.MaxPods && (best == nil || c.Pods < best.Pods ||
			(c.Pods == best.Pods && r.Seq < best.Runner.Seq)) {
			best = c
		}
	}
	if best != nil {
		assign(p, best)
		return nil
	}
	wait(p, t)
	return nil
}

// Tally counts the runners of an organization at each step at which
// placement leaves runners out, for a pod that fits nowhere.
type Tally struct {
	// Online runners; of those, Working ones (not draining); of those, the
	// ones WithAgent (the pod's agent type); of those, the Fitting ones
	// (all the pod's labels).
	Online, Working, WithAgent, Fitting int
	// Pods and Capacity are the active pods and the maximum pods of the
	// fitting runners.
	Pods, Capacity int
}

// wait leaves p without a runner, with the reason t gives: the first step
// that left no runner.
func wait(p *Pod, t Tally) {
	p.RunnerID, p.RunnerSeq = "", 0
	switch {
	case t.Online == 0:
		p.Reason = "no runner online"
	case t.Working == 0:
		p.Reason = fmt.Sprintf("no runner takes work: all %d online runners are draining or have an unhealthy pod manager", t.Online)
	case t.WithAgent == 0:
		p.Reason = fmt.Sprintf("no online runner has agent type %q", p.AgentTypeID)
	case t.Fitting == 0:
		p.Reason = fmt.Sprintf("no online runner with agent type %q has labels %v", p.AgentTypeID, p.Labels)
	default:
		p.Reason = fmt.Sprintf("all runners that fit are full (%d of %d pods)", t.Pods, t.Capacity)
	}
}

func assign(p *Pod, c *Candidate) {
	p.RunnerID, p.RunnerSeq, p.Reason = c.Runner.ID, c.Runner.Seq, ""
	c.Pods++
}
