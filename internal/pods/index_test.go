package pods

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/runners"
)

// TestIndex_SameAsPlace places random pods on random runners, through an
// Index and through place on the candidates a store would load for each
// placement, and wants the same runner, reason, error and counts every
// time, while counts change under both and the clock moves back and forth.
func TestIndex_SameAsPlace(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { indexAgainstPlace(t, seed) })
	}
}

func indexAgainstPlace(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	pick := func(all []string) []string {
		var out []string
		for _, s := range all {
			if rng.IntN(3) > 0 {
				out = append(out, s)
			}
		}
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	}
	agents, labels := []string{"claude-code", "codex", "aider"}, []string{"gpu", "linux", "arm"}
	phases := []runners.Phase{runners.PhaseActive, runners.PhaseActive, runners.PhaseActive, runners.PhaseDegraded,
		runners.PhaseInactive, runners.PhaseCreated}
	n := 1 + rng.IntN(60)
	// all is every runner of the organization; ref and idx hold their
	// counts apart.
	var all, ref []*Candidate
	for i := range n {
		r := &runners.Runner{
			ID: fmt.Sprintf("r%d", i), Seq: int64(3 * (i + 1)), Name: fmt.Sprintf("n%d", i),
			Spec:     runners.Spec{DesiredPhase: runners.PhaseActive},
			Status:   runners.Status{Phase: phases[rng.IntN(len(phases))]},
			LastSeen: now.Add(-time.Duration(rng.IntN(45)) * time.Second),
			Report:   runners.Report{MaxPods: rng.IntN(5), AgentTypes: pick(agents), Labels: pick(labels), Draining: rng.IntN(8) == 0},
		}
		if rng.IntN(10) == 0 {
			r.Spec.DesiredPhase = runners.PhaseInactive
		}
		pods := rng.IntN(r.Report.MaxPods + 2)
		all = append(all, &Candidate{Runner: r, Pods: pods})
		ref = append(ref, &Candidate{Runner: r, Pods: pods})
	}
	var idxCands []*Candidate
	for _, c := range all {
		if slices.Contains(IndexCandidates, c.Runner.Status.Phase) {
			idxCands = append(idxCands, &Candidate{Runner: c.Runner, Pods: c.Pods})
		}
	}
	x := NewIndex(idxCands)
	count := func(cands []*Candidate, id string) int {
		for _, c := range cands {
			if c.Runner.ID == id {
				return c.Pods
			}
		}
		return -1
	}
	// A pass of PlacePending places many pods at one instant.
	pl := placer{now: now, timeout: timeout}
	for step := range 400 {
		if rng.IntN(4) == 0 {
			// A pod ended or was placed elsewhere: both sides learn of it.
			c := ref[rng.IntN(n)]
			delta := 1
			if c.Pods > 0 && rng.IntN(2) == 0 {
				delta = -1
			}
			c.Pods += delta
			x.Adjust(c.Runner.ID, delta)
			continue
		}
		if rng.IntN(3) > 0 {
			pl = placer{now: now.Add(time.Duration(rng.IntN(20_000)-5_000) * time.Millisecond), timeout: timeout}
		}
		p := &Pod{AgentTypeID: agents[rng.IntN(len(agents))], Labels: pick(labels), Reason: "old"}
		var seq int64
		if rng.IntN(6) == 0 {
			seq = int64(rng.IntN(3*n + 4))
		}
		// What a store loads for place: the live runners and the requested one.
		var loaded []*Candidate
		for _, c := range ref {
			if (slices.Contains(IndexCandidates, c.Runner.Status.Phase) && c.Runner.LastSeen.After(pl.now.Add(-pl.timeout))) || c.Runner.Seq == seq {
				loaded = append(loaded, c)
			}
		}
		var requested *Candidate
		if seq != 0 && !x.Has(seq) {
			for _, c := range all {
				if c.Runner.Seq == seq {
					requested = &Candidate{Runner: c.Runner, Pods: count(ref, c.Runner.ID)}
				}
			}
		}
		q := *p
		q.Labels = slices.Clone(p.Labels)
		wantErr := pl.place(p, seq, loaded)
		gotErr := pl.placeIndexed(&q, seq, x, requested)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || q.RunnerID != p.RunnerID || q.RunnerSeq != p.RunnerSeq || q.Reason != p.Reason {
			t.Fatalf("step %d, pod %s %v on %d at %s:\nindex: runner %q reason %q err %v\nplace: runner %q reason %q err %v",
				step, p.AgentTypeID, p.Labels, seq, pl.now.Format(time.TimeOnly), q.RunnerID, q.Reason, gotErr, p.RunnerID, p.Reason, wantErr)
		}
		for _, c := range x.cands {
			if want := count(ref, c.Runner.ID); c.Pods != want {
				t.Fatalf("step %d: index counts %d pods on %s, place %d", step, c.Pods, c.Runner.ID, want)
			}
		}
	}
}

// TestIndex_SkipsSilentRunners: runners that went silent in front of the
// heap are passed over, and past maxSkipped place's full pass decides.
func TestIndex_SkipsSilentRunners(t *testing.T) {
	for _, silent := range []int{1, maxSkipped, maxSkipped + 1, 3 * maxSkipped} {
		var cands []*Candidate
		for i := range silent + 2 {
			c := cand(int64(i+1), 0, 4)
			if i < silent {
				offline(c.Runner)
			} else {
				c.Pods = 1
			}
			cands = append(cands, c)
		}
		x := NewIndex(cands)
		p := &Pod{AgentTypeID: "claude-code"}
		if err := (placer{now: now, timeout: timeout}).placeIndexed(p, 0, x, nil); err != nil {
			t.Fatal(err)
		}
		if want := int64(silent + 1); p.RunnerSeq != want {
			t.Errorf("%d silent: placed on %d, want %d", silent, p.RunnerSeq, want)
		}
		if len(x.classes) != 1 {
			t.Fatalf("%d classes, want 1", len(x.classes))
		}
		for _, cl := range x.classes {
			if len(cl.heap) != silent+2 {
				t.Errorf("%d silent: heap holds %d runners after the skip, want all %d", silent, len(cl.heap), silent+2)
			}
		}
	}
}

// TestIndex_ClassKeys: runners whose reported labels or agent types would
// read alike if joined with a separator (a report may hold any character)
// are not grouped together.
func TestIndex_ClassKeys(t *testing.T) {
	tests := []struct {
		name         string
		first, other func(*runners.Runner)
	}{
		{"Labels",
			func(r *runners.Runner) { r.Report.Labels = []string{"arm", "gpu"} },
			func(r *runners.Runner) { r.Report.Labels = []string{"arm\x01gpu"} }},
		{"AgentTypesAndLabels",
			func(r *runners.Runner) {
				r.Report.AgentTypes, r.Report.Labels = []string{"claude-code"}, []string{"gpu", "b\x00c"}
			},
			func(r *runners.Runner) {
				r.Report.AgentTypes, r.Report.Labels = []string{"claude-code\x00b"}, []string{"c\x01gpu"}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The runner that fits has more pods, so a wrong class would
			// offer the other one first.
			x := NewIndex([]*Candidate{cand(1, 1, 4, tt.first), cand(2, 0, 4, tt.other)})
			p := &Pod{AgentTypeID: "claude-code", Labels: []string{"gpu"}}
			if err := (placer{now: now, timeout: timeout}).placeIndexed(p, 0, x, nil); err != nil {
				t.Fatal(err)
			}
			if got, want := p.RunnerSeq, int64(1); got != want {
				t.Errorf("placed on %d, want %d (reason %q)", got, want, p.Reason)
			}
		})
	}
}
