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
	return CandidateFilter{OrgID: orgID, LiveAfter: pl.now.Add(-pl.timeout), Seq: seq}
}

// refusal says why runner c cannot take p now, or "" when it can.
func (pl placer) refusal(c *Candidate, p *Pod) string {
	r := c.Runner
	switch {
	case !r.Online(pl.now, pl.timeout):
		return "it is offline"
	case r.Draining():
		return "it is draining"
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
	var online, working, withAgent, fitting []*Candidate
	for _, c := range cands {
		if !c.Runner.Online(pl.now, pl.timeout) {
			continue
		}
		online = append(online, c)
		if c.Runner.Draining() {
			continue
		}
		working = append(working, c)
		if !slices.Contains(c.Runner.Report.AgentTypes, p.AgentTypeID) {
			continue
		}
		withAgent = append(withAgent, c)
		if len(missingLabels(c.Runner.Report.Labels, p.Labels)) == 0 {
			fitting = append(fitting, c)
		}
	}
	var best *Candidate
	pods, capacity := 0, 0
	for _, c := range fitting {
		pods, capacity = pods+c.Pods, capacity+c.Runner.Report.MaxPods
		if c.Pods < c.Runner.Report.MaxPods && (best == nil || c.Pods < best.Pods ||
			(c.Pods == best.Pods && c.Runner.Seq < best.Runner.Seq)) {
			best = c
		}
	}
	if best != nil {
		assign(p, best)
		return nil
	}
	p.RunnerID, p.RunnerSeq = "", 0
	switch {
	case len(online) == 0:
		p.Reason = "no runner online"
	case len(working) == 0:
		p.Reason = fmt.Sprintf("no runner takes work: all %d online runners are draining", len(online))
	case len(withAgent) == 0:
		p.Reason = fmt.Sprintf("no online runner has agent type %q", p.AgentTypeID)
	case len(fitting) == 0:
		p.Reason = fmt.Sprintf("no online runner with agent type %q has labels %v", p.AgentTypeID, p.Labels)
	default:
		p.Reason = fmt.Sprintf("all runners that fit are full (%d of %d pods)", pods, capacity)
	}
	return nil
}

func assign(p *Pod, c *Candidate) {
	p.RunnerID, p.RunnerSeq, p.Reason = c.Runner.ID, c.Runner.Seq, ""
	c.Pods++
}
