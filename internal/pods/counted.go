package pods

import "fmt"

// This file is placement for a store that counts the active pods of each
// runner in the database as pods are written (runner_capacity.active_pods,
// kept by a trigger on pods), so that it can find the
// runner place would choose with one indexed query instead of loading every
// candidate of the organization: with several control-plane replicas on one
// database, no process can keep an Index that it knows to be exact.

// Finder looks up, inside a store's placement transaction, what place needs
// to decide for a pod. Its answers are those place would compute on the
// candidates the CandidateFilter selects.
type Finder interface {
	// Best returns the runner place chooses for p among all candidates:
	// online, not draining, with p's agent type and all its labels, below
	// its maximum; the fewest pods first, then the lowest seq. It returns
	// nil when none fits.
	Best(p *Pod) (*Candidate, error)
	// Tally counts why no runner fits p (Best returned nil).
	Tally(p *Pod) (Tally, error)
	// Requested returns the runner of the organization with numeric id seq
	// and its count of active pods, whatever its phase; nil when the
	// organization has none.
	Requested(seq int64) (*Candidate, error)
}

// CountedPlaceFunc places p as PlaceFunc does, asking find instead of
// looking at every candidate. It sets p.RunnerID, p.RunnerSeq and p.Reason;
// the store counts the pod when it stores it.
type CountedPlaceFunc func(p *Pod, find Finder) error

// placeCounted decides as place(p, seq, candidates) would.
func (pl placer) placeCounted(p *Pod, seq int64, find Finder) error {
	if seq != 0 {
		c, err := find.Requested(seq)
		if err != nil {
			return fmt.Errorf("find runner %d: %w", seq, err)
		}
		var cands []*Candidate
		if c != nil {
			cands = []*Candidate{c}
		}
		// place looks at the requested runner alone.
		return pl.place(p, seq, cands)
	}
	best, err := find.Best(p)
	if err != nil {
		return fmt.Errorf("find a runner: %w", err)
	}
	if best != nil {
		assign(p, best)
		return nil
	}
	t, err := find.Tally(p)
	if err != nil {
		return fmt.Errorf("count runners: %w", err)
	}
	wait(p, t)
	return nil
}
