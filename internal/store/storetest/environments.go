package storetest

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations/spec"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store"
)

// newEnvironment returns an environment on runnerID with every spec field
// set, so that a field a store loses shows.
func newEnvironment(orgID, runnerID, name string) *environments.Environment {
	started := base.Add(time.Second)
	return &environments.Environment{
		ID: uuid.NewString(), OrgID: orgID, RunnerID: runnerID, RunnerKind: runners.KindLocal, Name: name,
		Creator:    identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalServiceAccount},
		ContextURL: "https://example.com/org/repo.git",
		CreatedAt:  base, UpdatedAt: base, LastStartedAt: &started,
		Spec: environments.Spec{
			SpecVersion: 1, DesiredPhase: environments.PhaseRunning,
			Machine: environments.Machine{Session: "m1", Class: environments.DefaultClassID(runnerID)},
			Content: environments.Content{
				Session: "c1", GitUsername: "Ada", GitEmail: "ada@example.com",
				Initializers: []environments.Initializer{{Git: &environments.Git{
					RemoteURI: "https://example.com/org/repo.git", TargetMode: environments.CloneTargetRemoteBranch,
					CloneTarget: "main", CheckoutLocation: "repo",
				}}},
			},
			AutomationsFile: environments.AutomationsFile{
				Session: "a1", Path: environments.DefaultAutomationsFilePath,
				TriggerFilter: []spec.Trigger{spec.TriggerPostEnvironmentStart},
			},
		},
		Status: environments.Status{Phase: environments.PhaseCreating},
	}
}

func testEnvironmentRoundTrip(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	e := newEnvironment(org.ID, uuid.NewString(), "round-trip")
	must(t, s.CreateEnvironment(ctx, e), "create environment")
	if e.Seq == 0 {
		t.Fatal("CreateEnvironment did not assign Seq")
	}
	got, err := s.FindEnvironmentByID(ctx, org.ID, e.ID)
	must(t, err, "find environment")
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("environment round trip:\n got %+v\nwant %+v", got, e)
	}

	// A full status report survives too.
	e.Status = environments.Status{
		StatusVersion: 7, Phase: environments.PhaseRunning,
		FailureMessage: []string{"a", "b"}, WarningMessage: []string{"w"},
		RunnerACK: &environments.RunnerACK{SpecVersion: 1, StatusCode: "STATUS_CODE_OK", Message: "ok"},
		Machine:   &environments.MachineStatus{Session: "m1", Phase: "PHASE_RUNNING"},
		Content: &environments.ContentStatus{Session: "c1", Phase: "CONTENT_PHASE_READY", Location: "/work/x",
			FailureMessage: "f", WarningMessage: "w"},
		AutomationsFile: &environments.AutomationsFileStatus{Session: "a1", Path: ".runyard/automations.yaml",
			Phase: "CONTENT_PHASE_READY", Presence: "PRESENCE_DISCOVERED"},
	}
	e.UpdatedAt = base.Add(time.Minute)
	_, err = s.UpdateEnvironment(ctx, org.ID, e.ID, func(cur *environments.Environment) error {
		cur.Status, cur.UpdatedAt = e.Status, e.UpdatedAt
		return nil
	})
	must(t, err, "update status")
	got, err = s.FindEnvironmentByID(ctx, org.ID, e.ID)
	must(t, err, "find environment")
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("status round trip:\n got %+v\nwant %+v", got.Status, e.Status)
	}

	other := newOrg(t, s)
	_, err = s.FindEnvironmentByID(ctx, other.ID, e.ID)
	wantCode(t, err, apperr.CodeNotFound, "find from another organization")
	_, err = s.UpdateEnvironment(ctx, other.ID, e.ID, func(*environments.Environment) error { return nil })
	wantCode(t, err, apperr.CodeNotFound, "update from another organization")
	wantCode(t, s.DeleteEnvironment(ctx, other.ID, e.ID, nil), apperr.CodeNotFound, "delete from another organization")
	_, err = s.FindEnvironmentByID(ctx, org.ID, uuid.NewString())
	wantCode(t, err, apperr.CodeNotFound, "find missing")
}

func envIDs(es []*environments.Environment) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func testFindEnvironments(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	other := newOrg(t, s)
	runnerA, runnerB := uuid.NewString(), uuid.NewString()
	creator := identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalUser}
	var all []*environments.Environment
	for i := range 6 {
		runnerID := runnerA
		if i%2 == 1 {
			runnerID = runnerB
		}
		e := newEnvironment(org.ID, runnerID, "env")
		if i%3 == 0 {
			e.Creator = creator
		}
		if i >= 4 {
			e.Status.Phase = environments.PhaseRunning
			e.RunnerKind = runners.KindRemote
		}
		must(t, s.CreateEnvironment(ctx, e), "create")
		all = append(all, e)
		must(t, s.CreateEnvironment(ctx, newEnvironment(other.ID, runnerA, "other")), "create in other organization")
	}
	// Newest first.
	pick := func(idx ...int) []string {
		var out []string
		for i := len(all) - 1; i >= 0; i-- {
			for _, j := range idx {
				if i == j {
					out = append(out, all[i].ID)
				}
			}
		}
		return out
	}
	tests := []struct {
		name string
		f    environments.Filter
		want []string
	}{
		{"All", environments.Filter{}, pick(0, 1, 2, 3, 4, 5)},
		{"Runner", environments.Filter{RunnerIDs: []string{runnerB}}, pick(1, 3, 5)},
		{"Phase", environments.Filter{Phases: []environments.Phase{environments.PhaseRunning}}, pick(4, 5)},
		{"Creator", environments.Filter{CreatorIDs: []string{creator.ID}}, pick(0, 3)},
		{"RunnerKind", environments.Filter{RunnerKinds: []runners.Kind{runners.KindLocal}}, pick(0, 1, 2, 3)},
		{"Combined", environments.Filter{RunnerIDs: []string{runnerA}, Phases: []environments.Phase{environments.PhaseCreating}}, pick(0, 2)},
		{"Page", environments.Filter{Before: all[4].Seq, Limit: 2}, pick(2, 3)},
		{"LastPage", environments.Filter{Before: all[1].Seq, Limit: 2}, pick(0)},
		{"None", environments.Filter{RunnerIDs: []string{uuid.NewString()}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.OrgID = org.ID
			got, err := s.FindEnvironments(ctx, tt.f)
			must(t, err, "find environments")
			if ids := envIDs(got); !reflect.DeepEqual(ids, tt.want) && (len(ids) != 0 || len(tt.want) != 0) {
				t.Fatalf("got %v, want %v", ids, tt.want)
			}
		})
	}
}

func testUpdateEnvironment(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	e := newEnvironment(org.ID, uuid.NewString(), "update")
	must(t, s.CreateEnvironment(ctx, e), "create")
	got, err := s.UpdateEnvironment(ctx, org.ID, e.ID, func(e *environments.Environment) error {
		e.Spec.DesiredPhase = environments.PhaseStopped
		e.Spec.SpecVersion++
		e.Status.Phase = environments.PhaseStopping
		e.LastStartedAt = nil
		return nil
	})
	must(t, err, "update")
	reread, err := s.FindEnvironmentByID(ctx, org.ID, e.ID)
	must(t, err, "find")
	if !reflect.DeepEqual(got, reread) || reread.Spec.SpecVersion != 2 || reread.Status.Phase != environments.PhaseStopping || reread.LastStartedAt != nil {
		t.Fatalf("after update: returned %+v, stored %+v", got, reread)
	}
	refused := errors.New("refused")
	_, err = s.UpdateEnvironment(ctx, org.ID, e.ID, func(e *environments.Environment) error {
		e.Spec.DesiredPhase = environments.PhaseDeleted
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("a refusing fn: got %v", err)
	}
	after, err := s.FindEnvironmentByID(ctx, org.ID, e.ID)
	must(t, err, "find")
	if after.Spec.DesiredPhase != environments.PhaseStopped {
		t.Fatalf("a refused update changed the environment: %+v", after.Spec)
	}
	_, err = s.UpdateEnvironment(ctx, org.ID, uuid.NewString(), func(*environments.Environment) error { return nil })
	wantCode(t, err, apperr.CodeNotFound, "update missing")

	// Concurrent read-modify-writes do not lose each other.
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateEnvironment(ctx, org.ID, e.ID, func(e *environments.Environment) error {
				e.Spec.SpecVersion++
				return nil
			})
			if err != nil {
				t.Errorf("concurrent update: %v", err)
			}
		}()
	}
	wg.Wait()
	final, err := s.FindEnvironmentByID(ctx, org.ID, e.ID)
	must(t, err, "find")
	if got, want := final.Spec.SpecVersion, uint64(2+n); got != want {
		t.Fatalf("after %d concurrent increments specVersion = %d, want %d", n, got, want)
	}
}

func testDeleteEnvironment(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	runnerID := uuid.NewString()
	e := newEnvironment(org.ID, runnerID, "doomed")
	must(t, s.CreateEnvironment(ctx, e), "create")
	kept := errors.New("kept")
	if err := s.DeleteEnvironment(ctx, org.ID, e.ID, func(got *environments.Environment) error {
		if got.ID != e.ID {
			t.Errorf("keep got environment %q, want %q", got.ID, e.ID)
		}
		return kept
	}); !errors.Is(err, kept) {
		t.Fatalf("delete refused by keep: got %v", err)
	}
	_, err := s.FindEnvironmentByID(ctx, org.ID, e.ID)
	must(t, err, "a kept environment is still there")
	must(t, s.DeleteEnvironment(ctx, org.ID, e.ID, nil), "delete")
	_, err = s.FindEnvironmentByID(ctx, org.ID, e.ID)
	wantCode(t, err, apperr.CodeNotFound, "find deleted")
	wantCode(t, s.DeleteEnvironment(ctx, org.ID, e.ID, nil), apperr.CodeNotFound, "delete twice")

	// DeleteRunnerEnvironments takes one runner's environments of one
	// organization.
	other := newOrg(t, s)
	var mine []*environments.Environment
	for range 3 {
		x := newEnvironment(org.ID, runnerID, "runner")
		must(t, s.CreateEnvironment(ctx, x), "create")
		mine = append(mine, x)
	}
	elsewhere := newEnvironment(org.ID, uuid.NewString(), "elsewhere")
	must(t, s.CreateEnvironment(ctx, elsewhere), "create elsewhere")
	sameRunnerOtherOrg := newEnvironment(other.ID, runnerID, "other")
	must(t, s.CreateEnvironment(ctx, sameRunnerOtherOrg), "create in other organization")
	n, err := s.DeleteRunnerEnvironments(ctx, org.ID, runnerID)
	must(t, err, "delete the runner's environments")
	if n != len(mine) {
		t.Fatalf("removed %d environments, want %d", n, len(mine))
	}
	for _, x := range mine {
		_, err := s.FindEnvironmentByID(ctx, org.ID, x.ID)
		wantCode(t, err, apperr.CodeNotFound, "environment of the deleted runner")
	}
	for _, x := range []*environments.Environment{elsewhere, sameRunnerOtherOrg} {
		if _, err := s.FindEnvironmentByID(ctx, x.OrgID, x.ID); err != nil {
			t.Fatalf("environment %q of another runner or organization: %v", x.Name, err)
		}
	}
	n, err = s.DeleteRunnerEnvironments(ctx, org.ID, runnerID)
	must(t, err, "delete again")
	if n != 0 {
		t.Fatalf("second removal removed %d", n)
	}
}
