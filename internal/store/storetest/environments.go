package storetest

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations"
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
			Ports:         []environments.Port{{Port: 8080, Name: "web", Admission: environments.AdmissionEveryone}, {Port: 22}},
			SSHPublicKeys: []environments.SSHPublicKey{{ID: "laptop", Value: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host"}},
			Timeout:       environments.Timeout{Disconnected: 90 * time.Minute},
			Admission:     environments.AdmissionOwnerOnly,
			TimedOut:      "stopped once",
		},
		Status:   environments.Status{Phase: environments.PhaseCreating},
		Activity: &environments.Activity{Source: "VS Code", At: base.Add(2 * time.Second)},
	}
}

func refIDs(refs []environments.EnvironmentRef) []string {
	out := []string{}
	for _, r := range refs {
		out = append(out, r.OrgID+"/"+r.ID)
	}
	return out
}

// testEnvironmentActivity: the activity columns, the inactivity sweep's
// read (FindEnvironmentsToStop: due environments of every organization, by
// how long they are due, never one without a timeout or that should not
// run) and EnvironmentBusy.
func testEnvironmentActivity(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	mk := func(orgID string, timeout time.Duration, desired environments.Phase) *environments.Environment {
		t.Helper()
		e := newEnvironment(orgID, uuid.NewString(), "activity")
		e.Activity = nil
		e.Spec.Timeout.Disconnected, e.Spec.DesiredPhase = timeout, desired
		must(t, s.CreateEnvironment(ctx, e), "create environment")
		return e
	}
	// Started at base+1s: due after base+1h+1s and base+2h+1s.
	hour := mk(org.ID, time.Hour, environments.PhaseRunning)
	twoHours := mk(other.ID, 2*time.Hour, environments.PhaseRunning)
	mk(org.ID, 0, environments.PhaseRunning)
	mk(org.ID, time.Hour, environments.PhaseStopped)
	due := func(now time.Time, limit int, want ...*environments.Environment) {
		t.Helper()
		got, err := s.FindEnvironmentsToStop(ctx, now, limit)
		must(t, err, "find environments to stop")
		wantRefs := []string{}
		for _, e := range want {
			wantRefs = append(wantRefs, e.OrgID+"/"+e.ID)
		}
		if !reflect.DeepEqual(refIDs(got), wantRefs) {
			t.Fatalf("due at %s: %v, want %v", now.Sub(base), refIDs(got), wantRefs)
		}
	}
	due(base.Add(time.Hour), 10)
	due(base.Add(3*time.Hour), 10, hour, twoHours)
	due(base.Add(3*time.Hour), 1, hour)

	// Activity moves the stop and reads back.
	act := &environments.Activity{Source: "SSH", At: base.Add(150 * time.Minute)}
	_, err := s.UpdateEnvironment(ctx, org.ID, hour.ID, func(e *environments.Environment) error {
		e.Activity = act
		return nil
	})
	must(t, err, "record activity")
	got, err := s.FindEnvironmentByID(ctx, org.ID, hour.ID)
	must(t, err, "find environment")
	if !reflect.DeepEqual(got.Activity, act) {
		t.Fatalf("activity %+v, want %+v", got.Activity, act)
	}
	due(base.Add(3*time.Hour), 10, twoHours)
	due(base.Add(4*time.Hour), 10, twoHours, hour)
	// A stopped environment is never due.
	_, err = s.UpdateEnvironment(ctx, other.ID, twoHours.ID, func(e *environments.Environment) error {
		e.Spec.DesiredPhase = environments.PhaseStopped
		return nil
	})
	must(t, err, "stop environment")
	due(base.Add(4*time.Hour), 10, hour)

	// EnvironmentBusy sees unfinished executions only, in the organization
	// asked.
	busy := func(orgID, id string, want bool) {
		t.Helper()
		got, err := s.EnvironmentBusy(ctx, orgID, id)
		must(t, err, "environment busy")
		if got != want {
			t.Fatalf("EnvironmentBusy(%s) = %v, want %v", id, got, want)
		}
	}
	busy(org.ID, hour.ID, false)
	task := newTask(hour, "build")
	x := newExecution(task, automations.ExecutionPhaseRunning)
	create(t, s, hour, &automations.Changes{CreateTasks: []*automations.Task{task}, CreateExecutions: []*automations.TaskExecution{x}})
	busy(org.ID, hour.ID, true)
	busy(other.ID, hour.ID, false)
	_, err = s.UpdateTaskExecution(ctx, org.ID, x.ID, func(x *automations.TaskExecution) error {
		x.Status.Phase = automations.ExecutionPhaseSucceeded
		return nil
	})
	must(t, err, "finish execution")
	busy(org.ID, hour.ID, false)
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
