package environments_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/environments"
)

const edKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host"

func TestCreate_SpecFields(t *testing.T) {
	e := setup(t)
	r := e.runner(t, "fields")
	class := environments.DefaultClassID(r.ID)
	with := func(f func(in *environments.CreateInput)) environments.CreateInput {
		in := gitInput(class)
		f(&in)
		return in
	}
	tests := []struct {
		name  string
		in    environments.CreateInput
		field string // empty: must succeed
		check func(t *testing.T, x *environments.Environment)
	}{
		{name: "OKRecorded", in: with(func(in *environments.CreateInput) {
			in.Spec.Ports = []environments.Port{{Port: 8080, Name: "web", Admission: environments.AdmissionEveryone}, {Port: 3000, Admission: environments.AdmissionUnspecified}}
			in.Spec.SSHPublicKeys = []environments.SSHPublicKey{{ID: "laptop", Value: "  " + edKey + "\n"}}
			in.Spec.Timeout.Disconnected = time.Hour
			in.Spec.Admission = environments.AdmissionOwnerOnly
		}), check: func(t *testing.T, x *environments.Environment) {
			wantPorts := []environments.Port{{Port: 8080, Name: "web", Admission: environments.AdmissionEveryone}, {Port: 3000}}
			if !reflect.DeepEqual(x.Spec.Ports, wantPorts) {
				t.Errorf("ports %+v, want %+v", x.Spec.Ports, wantPorts)
			}
			if want := []environments.SSHPublicKey{{ID: "laptop", Value: edKey}}; !reflect.DeepEqual(x.Spec.SSHPublicKeys, want) {
				t.Errorf("ssh keys %+v, want %+v", x.Spec.SSHPublicKeys, want)
			}
			if x.Spec.Timeout.Disconnected != time.Hour || x.Spec.Admission != environments.AdmissionOwnerOnly {
				t.Errorf("timeout %v admission %q", x.Spec.Timeout.Disconnected, x.Spec.Admission)
			}
			if got := x.StopAfter(); got == nil || !got.Equal(x.LastStartedAt.Add(time.Hour)) {
				t.Errorf("StopAfter %v, want lastStartedAt + 1h", got)
			}
		}},
		{name: "OKDefaults", in: with(func(in *environments.CreateInput) {
			// Default values of the fields runyard cannot honour pass.
			in.Devcontainer = environments.Devcontainer{}
			in.Spec.Timeout.Disconnected = 0
		}), check: func(t *testing.T, x *environments.Environment) {
			if x.StopAfter() != nil {
				t.Errorf("StopAfter %v without a timeout", x.StopAfter())
			}
		}},
		{name: "ErrPortZero", in: with(func(in *environments.CreateInput) { in.Spec.Ports = []environments.Port{{Port: 0}} }), field: "spec.ports[0].port"},
		{name: "ErrPortHigh", in: with(func(in *environments.CreateInput) { in.Spec.Ports = []environments.Port{{Port: 65536}} }), field: "spec.ports[0].port"},
		{name: "ErrPortTwice", in: with(func(in *environments.CreateInput) { in.Spec.Ports = []environments.Port{{Port: 80}, {Port: 80}} }), field: "spec.ports[1].port"},
		{name: "ErrPortAdmission", in: with(func(in *environments.CreateInput) {
			in.Spec.Ports = []environments.Port{{Port: 80, Admission: "ADMISSION_LEVEL_SOME"}}
		}), field: "spec.ports[0].admission"},
		{name: "ErrPortName", in: with(func(in *environments.CreateInput) { in.Spec.Ports = []environments.Port{{Port: 80, Name: "a\x00b"}} }), field: "spec.ports[0].name"},
		{name: "ErrSSHKeyID", in: with(func(in *environments.CreateInput) {
			in.Spec.SSHPublicKeys = []environments.SSHPublicKey{{Value: edKey}}
		}), field: "spec.sshPublicKeys[0].id"},
		{name: "ErrSSHKeyTwice", in: with(func(in *environments.CreateInput) {
			in.Spec.SSHPublicKeys = []environments.SSHPublicKey{{ID: "a", Value: edKey}, {ID: "a", Value: edKey}}
		}), field: "spec.sshPublicKeys[1].id"},
		{name: "ErrSSHKeyValue", in: with(func(in *environments.CreateInput) {
			in.Spec.SSHPublicKeys = []environments.SSHPublicKey{{ID: "a", Value: "ssh-ed25519 not-base64"}}
		}), field: "spec.sshPublicKeys[0].value"},
		{name: "ErrSSHKeyTwoLines", in: with(func(in *environments.CreateInput) {
			in.Spec.SSHPublicKeys = []environments.SSHPublicKey{{ID: "a", Value: edKey + "\n" + edKey}}
		}), field: "spec.sshPublicKeys[0].value"},
		{name: "ErrTimeoutShort", in: with(func(in *environments.CreateInput) { in.Spec.Timeout.Disconnected = 29 * time.Minute }), field: "spec.timeout.disconnected"},
		{name: "ErrTimeoutNegative", in: with(func(in *environments.CreateInput) { in.Spec.Timeout.Disconnected = -time.Hour }), field: "spec.timeout.disconnected"},
		{name: "ErrAdmission", in: with(func(in *environments.CreateInput) { in.Spec.Admission = "ADMISSION_LEVEL_X" }), field: "spec.admission"},
		{name: "ErrDevcontainerFile", in: with(func(in *environments.CreateInput) { in.Devcontainer.FilePath = ".devcontainer/devcontainer.json" }), field: "spec.devcontainer.devcontainerFilePath"},
		{name: "ErrDevcontainerImage", in: with(func(in *environments.CreateInput) { in.Devcontainer.DefaultImage = "ubuntu" }), field: "spec.devcontainer.defaultDevcontainerImage"},
		{name: "ErrDotfiles", in: with(func(in *environments.CreateInput) {
			in.Devcontainer.DotfilesRepository = "https://github.com/me/dotfiles"
		}), field: "spec.devcontainer.dotfiles"},
		{name: "ErrSecrets", in: with(func(in *environments.CreateInput) { in.Secrets = []environments.SpecSecret{{ID: "s"}} }), field: "spec.secrets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.changes)
			x, err := e.svc.Create(e.admin, tt.in)
			if tt.field != "" {
				wantErr(t, err, apperr.CodeInvalid, tt.field+": ")
				if len(e.changes) != before {
					t.Errorf("a refused create called Changed")
				}
				return
			}
			must(t, err, "create")
			got, err := e.svc.Get(e.admin, x.ID)
			must(t, err, "get")
			if !reflect.DeepEqual(got, x) {
				t.Fatalf("reread differs:\n got %+v\nwant %+v", got, x)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}

func TestCreate_ContextURL(t *testing.T) {
	e := setup(t)
	r := e.runner(t, "context")
	class := environments.DefaultClassID(r.ID)
	for _, tc := range []struct {
		url  string
		want environments.Git
		name string
	}{
		{"https://github.com/org/repo/tree/feature/x", environments.Git{RemoteURI: "https://github.com/org/repo.git", TargetMode: environments.CloneTargetRemoteBranch, CloneTarget: "feature/x", CheckoutLocation: "repo"}, "repo"},
		{"https://github.com/org/repo/pull/9", environments.Git{RemoteURI: "https://github.com/org/repo.git", TargetMode: environments.CloneTargetRemoteBranch, CloneTarget: "refs/pull/9/head", CheckoutLocation: "repo"}, "repo"},
		{"https://gitlab.com/g/sub/proj/-/commit/abcdef12", environments.Git{RemoteURI: "https://gitlab.com/g/sub/proj.git", TargetMode: environments.CloneTargetRemoteCommit, CloneTarget: "abcdef12", CheckoutLocation: "proj"}, "proj"},
		{"https://codeberg.org/o/r/src/tag/v1", environments.Git{RemoteURI: "https://codeberg.org/o/r", TargetMode: environments.CloneTargetRemoteTag, CloneTarget: "v1", CheckoutLocation: "r"}, "r"},
		{"git@github.com:org/tool.git", environments.Git{RemoteURI: "git@github.com:org/tool.git", TargetMode: environments.CloneTargetRemoteHead, CheckoutLocation: "tool"}, "tool"},
		{"/srv/git/local", environments.Git{RemoteURI: "file:///srv/git/local", TargetMode: environments.CloneTargetRemoteHead, CheckoutLocation: "local"}, "local"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			url := tc.url
			x, err := e.svc.Create(e.admin, environments.CreateInput{Spec: environments.Spec{
				Machine: environments.Machine{Class: class},
				Content: environments.Content{Initializers: []environments.Initializer{{ContextURL: &url}}},
			}})
			must(t, err, "create")
			got, err := e.svc.Get(e.admin, x.ID)
			must(t, err, "get")
			if g := got.Spec.Content.Initializers[0].Git; g == nil || *g != tc.want {
				t.Errorf("git initializer %+v, want %+v", g, tc.want)
			}
			if got.ContextURL != tc.url || got.Name != tc.name {
				t.Errorf("contextUrl %q name %q, want %q %q", got.ContextURL, got.Name, tc.url, tc.name)
			}
		})
	}
}

// clock is a settable clock for the inactivity stop.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) advance(d time.Duration) { c.now = c.now.Add(d) }
func (e *env) stopInactive(t *testing.T) int {
	t.Helper()
	n, err := e.svc.StopInactive(ctx)
	must(t, err, "stop inactive")
	return n
}

func TestStopInactive(t *testing.T) {
	e := setup(t)
	clk := &clock{now: time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)}
	e.svc.Now = clk.Now
	r := e.runner(t, "sweep")
	class := environments.DefaultClassID(r.ID)
	create := func(timeout time.Duration) *environments.Environment {
		t.Helper()
		in := gitInput(class)
		in.Spec.Timeout.Disconnected = timeout
		x, err := e.svc.Create(e.admin, in)
		must(t, err, "create")
		return x
	}
	get := func(id string) *environments.Environment {
		t.Helper()
		x, err := e.svc.Get(e.admin, id)
		must(t, err, "get")
		return x
	}
	idle := create(time.Hour)
	active := create(time.Hour)
	forever := create(0)
	busy := create(time.Hour)

	// A running task execution keeps busy active.
	autos := automations.NewManager(e.db)
	autos.Now = clk.Now
	task, err := autos.CreateTask(e.admin, automations.TaskInput{EnvironmentID: busy.ID, Reference: "long", Spec: automations.TaskSpec{Command: "sleep 1000"}})
	must(t, err, "create task")
	_, err = autos.StartTask(e.admin, task.ID)
	must(t, err, "start task")

	clk.advance(40 * time.Minute)
	if n := e.stopInactive(t); n != 0 {
		t.Fatalf("stopped %d environments before any timeout passed", n)
	}
	must(t, e.svc.MarkActive(e.admin, environments.MarkActiveInput{EnvironmentID: active.ID, Source: "VS Code", At: clk.now.Add(-time.Minute)}), "mark active")
	// An older signal changes nothing.
	must(t, e.svc.MarkActive(e.admin, environments.MarkActiveInput{EnvironmentID: active.ID, Source: "SSH", At: clk.now.Add(-30 * time.Minute)}), "mark active (older)")
	if a := get(active.ID).Activity; a == nil || a.Source != "VS Code" || !a.At.Equal(clk.now.Add(-time.Minute)) {
		t.Fatalf("activity %+v, want VS Code a minute ago", a)
	}

	clk.advance(21 * time.Minute) // idle: 61m since its start; active: 22m since its signal
	e.changes = nil
	if n := e.stopInactive(t); n != 1 {
		t.Fatalf("stopped %d environments, want 1 (the idle one)", n)
	}
	x := get(idle.ID)
	if x.Spec.DesiredPhase != environments.PhaseStopped || x.Spec.SpecVersion != 2 {
		t.Errorf("idle: desired %s version %d, want STOPPED 2", x.Spec.DesiredPhase, x.Spec.SpecVersion)
	}
	if !strings.Contains(x.Spec.TimedOut, "1h0m0s without activity") || x.StopAfter() != nil {
		t.Errorf("idle: timedOut %q StopAfter %v", x.Spec.TimedOut, x.StopAfter())
	}
	if len(e.changes) != 1 || e.changes[0] != r.ID {
		t.Errorf("Changed calls %v, want the runner once", e.changes)
	}
	for _, id := range []string{active.ID, forever.ID, busy.ID} {
		if p := get(id).Spec.DesiredPhase; p != environments.PhaseRunning {
			t.Errorf("environment %s is %s, want RUNNING", id, p)
		}
	}
	if a := get(busy.ID).Activity; a == nil || a.Source != "task execution" || !a.At.Equal(clk.now) {
		t.Errorf("busy: activity %+v, want the task execution now", a)
	}

	clk.advance(time.Hour)
	clk.advance(time.Second)
	// active: its signal was 82m ago; busy still runs its execution.
	if n := e.stopInactive(t); n != 1 || get(active.ID).Spec.DesiredPhase != environments.PhaseStopped {
		t.Fatalf("stopped %d, active is %s; want active stopped alone", n, get(active.ID).Spec.DesiredPhase)
	}
	if p := get(busy.ID).Spec.DesiredPhase; p != environments.PhaseRunning {
		t.Errorf("busy is %s while its task execution runs", p)
	}
	if !strings.Contains(get(active.ID).Spec.TimedOut, `"VS Code"`) {
		t.Errorf("active: timedOut %q does not name the last activity", get(active.ID).Spec.TimedOut)
	}
	if n := e.stopInactive(t); n != 0 {
		t.Errorf("a second sweep stopped %d", n)
	}

	// A start clears the reason and runs the timeout again from then.
	must(t, e.svc.Start(e.admin, idle.ID), "start")
	x = get(idle.ID)
	if x.Spec.TimedOut != "" || x.StopAfter() == nil || !x.StopAfter().Equal(clk.now.Add(time.Hour)) {
		t.Errorf("restarted: timedOut %q StopAfter %v", x.Spec.TimedOut, x.StopAfter())
	}
	if get(forever.ID).Spec.DesiredPhase != environments.PhaseRunning {
		t.Errorf("an environment without a timeout was stopped")
	}
}

func TestMarkActive_Errors(t *testing.T) {
	e := setup(t)
	r := e.runner(t, "mark")
	x := e.create(t, r)
	wantErr(t, e.svc.MarkActive(e.admin, environments.MarkActiveInput{EnvironmentID: "nope"}), apperr.CodeInvalid, "environmentId")
	wantErr(t, e.svc.MarkActive(e.admin, environments.MarkActiveInput{EnvironmentID: x.ID, Source: "a\nb"}), apperr.CodeInvalid, "activitySignal.source")
	wantErr(t, e.svc.MarkActive(e.admin, environments.MarkActiveInput{EnvironmentID: r.ID}), apperr.CodeNotFound)
	wantErr(t, e.svc.MarkActive(e.keyCtx("environments:read"), environments.MarkActiveInput{EnvironmentID: x.ID}), apperr.CodePermissionDenied)
	// A signal from the future counts as now.
	must(t, e.svc.MarkActive(e.admin, environments.MarkActiveInput{EnvironmentID: x.ID, Source: "x", At: time.Now().Add(time.Hour)}), "mark")
	got, err := e.svc.Get(e.admin, x.ID)
	must(t, err, "get")
	if got.Activity == nil || got.Activity.At.After(time.Now()) {
		t.Errorf("activity %+v lies in the future", got.Activity)
	}
}
