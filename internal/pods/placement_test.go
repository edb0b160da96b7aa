package pods

import (
	"strings"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/runners"
)

var now = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

const timeout = 30 * time.Second

// cand is a runner that can take claude-code pods with label gpu, with
// pods of max; change adjusts it.
func cand(seq int64, pods, max int, change ...func(*runners.Runner)) *Candidate {
	r := &runners.Runner{
		ID: "runner-" + string(rune('a'+seq)), Seq: seq, Name: "r" + string(rune('0'+seq)),
		Spec:     runners.Spec{DesiredPhase: runners.PhaseActive},
		Status:   runners.Status{Phase: runners.PhaseActive},
		LastSeen: now.Add(-time.Second),
		Report:   runners.Report{MaxPods: max, Labels: []string{"gpu", "linux"}, AgentTypes: []string{"claude-code", "codex"}},
	}
	for _, f := range change {
		f(r)
	}
	return &Candidate{Runner: r, Pods: pods}
}

func offline(r *runners.Runner)  { r.LastSeen = now.Add(-time.Minute) }
func inactive(r *runners.Runner) { r.Status.Phase = runners.PhaseInactive }
func draining(r *runners.Runner) { r.Report.Draining = true }
func drained(r *runners.Runner)  { r.Spec.DesiredPhase = runners.PhaseInactive }
func noAgent(r *runners.Runner)  { r.Report.AgentTypes = []string{"codex"} }
func noGPU(r *runners.Runner)    { r.Report.Labels = []string{"linux"} }

// sickPods is a runner whose daemon reports its pod manager unhealthy (and
// so DEGRADED): it works, but a pod placed there would fail at once.
func sickPods(r *runners.Runner) {
	r.Status.Phase = runners.PhaseDegraded
	r.Report.Components = []runners.Component{{Name: runners.ComponentAgent, Message: "pods dir: no space left on device"},
		{Name: runners.ComponentToolManager, Healthy: true}}
}

func TestPlace(t *testing.T) {
	tests := []struct {
		name   string
		labels []string
		cands  []*Candidate
		// want is the seq of the chosen runner; zero for none.
		want   int64
		reason string
	}{
		{"LeastLoaded", nil, []*Candidate{cand(1, 2, 4), cand(2, 1, 4), cand(3, 3, 4)}, 2, ""},
		{"TieLowestSeq", nil, []*Candidate{cand(1, 2, 4), cand(2, 1, 4), cand(3, 1, 4)}, 2, ""},
		{"FullSkipped", nil, []*Candidate{cand(1, 2, 2), cand(2, 3, 4)}, 2, ""},
		{"Labels", []string{"gpu"}, []*Candidate{cand(1, 0, 4, noGPU), cand(2, 3, 4)}, 2, ""},
		{"AllLabels", []string{"gpu", "linux"}, []*Candidate{cand(1, 0, 4, noGPU), cand(2, 1, 4)}, 2, ""},
		{"AgentType", nil, []*Candidate{cand(1, 0, 4, noAgent), cand(2, 3, 4)}, 2, ""},
		{"DrainingSkipped", nil, []*Candidate{cand(1, 0, 4, draining), cand(2, 0, 4, drained), cand(3, 3, 4)}, 3, ""},
		{"OfflineSkipped", nil, []*Candidate{cand(1, 0, 4, offline), cand(2, 0, 4, inactive), cand(3, 3, 4)}, 3, ""},
		{"DegradedTakesWork", nil, []*Candidate{cand(1, 0, 4, func(r *runners.Runner) { r.Status.Phase = runners.PhaseDegraded })}, 1, ""},
		{"SickPodManagerSkipped", nil, []*Candidate{cand(1, 0, 4, sickPods), cand(2, 3, 4)}, 2, ""},

		{"ErrNoRunners", nil, nil, 0, "no runner online"},
		{"ErrNoneOnline", nil, []*Candidate{cand(1, 0, 4, offline), cand(2, 0, 4, inactive)}, 0, "no runner online"},
		{"ErrAllDraining", nil, []*Candidate{cand(1, 0, 4, draining), cand(2, 0, 4, drained), cand(3, 0, 4, offline)}, 0,
			"no runner takes work: all 2 online runners are draining or have an unhealthy pod manager"},
		{"ErrAllSick", nil, []*Candidate{cand(1, 0, 4, sickPods)}, 0,
			"no runner takes work: all 1 online runners are draining or have an unhealthy pod manager"},
		{"ErrNoAgent", nil, []*Candidate{cand(1, 0, 4, noAgent), cand(2, 0, 4, offline)}, 0, `no online runner has agent type "claude-code"`},
		{"ErrNoLabels", []string{"gpu", "arm"}, []*Candidate{cand(1, 0, 4), cand(2, 0, 4, noGPU)}, 0,
			`no online runner with agent type "claude-code" has labels [gpu arm]`},
		{"ErrAllFull", []string{"gpu"}, []*Candidate{cand(1, 2, 2), cand(2, 3, 3), cand(3, 0, 4, noGPU), cand(4, 0, 0)}, 0,
			"all runners that fit are full (5 of 5 pods)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Pod{AgentTypeID: "claude-code", Labels: tt.labels, Reason: "old"}
			before := map[int64]int{}
			for _, c := range tt.cands {
				before[c.Runner.Seq] = c.Pods
			}
			if err := (placer{now: now, timeout: timeout}).place(p, 0, tt.cands); err != nil {
				t.Fatalf("place: %v", err)
			}
			if got, want := p.RunnerSeq, tt.want; got != want {
				t.Fatalf("placed on %d, want %d (reason %q)", got, want, p.Reason)
			}
			if got, want := p.Reason, tt.reason; got != want {
				t.Errorf("reason = %q, want %q", got, want)
			}
			for _, c := range tt.cands {
				want := before[c.Runner.Seq]
				if c.Runner.Seq == tt.want {
					want++
					if p.RunnerID != c.Runner.ID {
						t.Errorf("runner id = %q, want %q", p.RunnerID, c.Runner.ID)
					}
				}
				if c.Pods != want {
					t.Errorf("runner %d counts %d pods, want %d", c.Runner.Seq, c.Pods, want)
				}
			}
			if tt.want == 0 && p.RunnerID != "" {
				t.Errorf("runner id = %q, want none", p.RunnerID)
			}
		})
	}
}

func TestPlace_RequestedRunner(t *testing.T) {
	tests := []struct {
		name    string
		labels  []string
		cand    *Candidate
		code    apperr.Code
		mention string
	}{
		{"OK", []string{"gpu"}, cand(7, 3, 4), "", ""},
		{"ErrOffline", nil, cand(7, 0, 4, offline), apperr.CodeFailedPrecondition, "runner 7 (r7) cannot take the pod: it is offline"},
		{"ErrDraining", nil, cand(7, 0, 4, drained), apperr.CodeFailedPrecondition, "it is draining"},
		{"ErrSickPodManager", nil, cand(7, 0, 4, sickPods), apperr.CodeFailedPrecondition, "its pod manager is unhealthy: pods dir: no space left on device"},
		{"ErrNoAgent", nil, cand(7, 0, 4, noAgent), apperr.CodeFailedPrecondition, `it does not have agent type "claude-code"`},
		{"ErrLabels", []string{"gpu", "arm"}, cand(7, 0, 4), apperr.CodeFailedPrecondition, "it lacks labels [arm]"},
		{"ErrFull", nil, cand(7, 4, 4), apperr.CodeFailedPrecondition, "it is full (4 of 4 pods)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A less loaded runner does not matter when one is requested.
			idle := cand(1, 0, 4)
			p := &Pod{AgentTypeID: "claude-code", Labels: tt.labels}
			err := (placer{now: now, timeout: timeout}).place(p, 7, []*Candidate{idle, tt.cand})
			if tt.code == "" {
				if err != nil || p.RunnerSeq != 7 || tt.cand.Pods != 4 || idle.Pods != 0 {
					t.Fatalf("place = %v, on %d with %d pods; want runner 7 with 4", err, p.RunnerSeq, tt.cand.Pods)
				}
				return
			}
			if got := apperr.CodeOf(err); got != tt.code || !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("place = %v (%s), want %s mentioning %q", err, got, tt.code, tt.mention)
			}
		})
	}
	t.Run("ErrUnknown", func(t *testing.T) {
		err := (placer{now: now, timeout: timeout}).place(&Pod{AgentTypeID: "claude-code"}, 9, []*Candidate{cand(1, 0, 4)})
		if e := apperr.As(err); e.Code != apperr.CodeInvalid || e.Field != "runner_id" {
			t.Fatalf("place = %v, want invalid runner_id", err)
		}
	})
}
