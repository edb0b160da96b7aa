package environments_test

import (
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/store/postgres"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/testutil"
)

// forEachStore runs fn on a service over SQLite and over PostgreSQL (skipped
// without RUNYARD_TEST_POSTGRES_URL).
func forEachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) {
		db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "runyard.db"))
		must(t, err, "open sqlite")
		fn(t, setupOn(t, db))
	})
	t.Run("postgres", func(t *testing.T) {
		db, err := postgres.Open(ctx, testutil.PostgresURL(t))
		must(t, err, "open postgres")
		fn(t, setupOn(t, db))
	})
}

// sshKey is a valid authorized_keys line of a key made from seed.
func sshKey(t *testing.T, seed byte, comment string) string {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	pub, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(s).Public())
	must(t, err, "ssh public key")
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + comment
}

// TestUpdate_SpecFields runs a sequence of updates of spec.ports,
// spec.sshPublicKeys and spec.timeout.disconnected on one environment; each
// row states the fields afterwards, or the field a refusal names (and then
// nothing changes).
func TestUpdate_SpecFields(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		clk := &clock{now: time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)}
		e.svc.Now = clk.Now
		r := e.runner(t, "update-fields")
		x := e.create(t, r)
		keyA, keyB := sshKey(t, 1, "a@host"), sshKey(t, 2, "b@host")
		manyKeys := make([]environments.SSHPublicKeyChange, 32)
		for i := range manyKeys {
			manyKeys[i] = environments.SSHPublicKeyChange{ID: fmt.Sprintf("k%d", i), Value: &keyA}
		}
		type fields struct {
			ports   []environments.Port
			keys    []environments.SSHPublicKey
			timeout time.Duration
		}
		ports := func(p ...environments.Port) *[]environments.Port { return &p }
		keys := func(k ...environments.SSHPublicKeyChange) []environments.SSHPublicKeyChange { return k }
		key := func(id string, v *string) environments.SSHPublicKeyChange {
			return environments.SSHPublicKeyChange{ID: id, Value: v}
		}
		web := environments.Port{Port: 8080, Name: "web", Admission: environments.AdmissionEveryone}
		app := environments.Port{Port: 3000, Name: "app", Admission: environments.AdmissionOwnerOnly}
		tests := []struct {
			name  string
			in    environments.UpdateInput
			field string // a refusal naming it: nothing changes
			want  fields // otherwise the fields afterwards
		}{
			{name: "PortsSet", in: environments.UpdateInput{Ports: ports(web, environments.Port{Port: 3000, Admission: environments.AdmissionUnspecified})},
				want: fields{ports: []environments.Port{web, {Port: 3000}}}},
			{name: "PortsChange", in: environments.UpdateInput{Ports: ports(app)},
				want: fields{ports: []environments.Port{app}}},
			{name: "PortsLeftOut", in: environments.UpdateInput{Name: ptr("renamed")},
				want: fields{ports: []environments.Port{app}}},
			{name: "PortsRemove", in: environments.UpdateInput{Ports: ports()}},
			{name: "ErrPortsTwice", in: environments.UpdateInput{Ports: ports(web, web)}, field: "spec.ports[1].port"},
			{name: "ErrPortsZero", in: environments.UpdateInput{Ports: ports(environments.Port{Port: 0})}, field: "spec.ports[0].port"},
			{name: "ErrPortsAdmission", in: environments.UpdateInput{Ports: ports(environments.Port{Port: 80, Admission: "ADMISSION_LEVEL_X"})}, field: "spec.ports[0].admission"},

			{name: "KeysSet", in: environments.UpdateInput{SSHPublicKeys: keys(key("laptop", ptr(" "+keyA+"\n")))},
				want: fields{keys: []environments.SSHPublicKey{{ID: "laptop", Value: keyA}}}},
			{name: "KeysAddAnother", in: environments.UpdateInput{SSHPublicKeys: keys(key("ci", &keyB))},
				want: fields{keys: []environments.SSHPublicKey{{ID: "laptop", Value: keyA}, {ID: "ci", Value: keyB}}}},
			{name: "KeysChangeInPlace", in: environments.UpdateInput{SSHPublicKeys: keys(key("laptop", &keyB))},
				want: fields{keys: []environments.SSHPublicKey{{ID: "laptop", Value: keyB}, {ID: "ci", Value: keyB}}}},
			{name: "KeysRemoveWithoutValue", in: environments.UpdateInput{SSHPublicKeys: keys(key("laptop", nil))},
				want: fields{keys: []environments.SSHPublicKey{{ID: "ci", Value: keyB}}}},
			{name: "KeysRemoveAbsent", in: environments.UpdateInput{SSHPublicKeys: keys(key("never-there", nil))},
				want: fields{keys: []environments.SSHPublicKey{{ID: "ci", Value: keyB}}}},
			{name: "KeysRemoveBlankValue", in: environments.UpdateInput{SSHPublicKeys: keys(key("ci", ptr("  ")))}},
			{name: "ErrKeysValue", in: environments.UpdateInput{SSHPublicKeys: keys(key("ok", &keyA), key("bad", ptr("ssh-ed25519 not-a-key")))},
				field: "spec.sshPublicKeys[1].value"},
			{name: "ErrKeysNoID", in: environments.UpdateInput{SSHPublicKeys: keys(key("", &keyA))}, field: "spec.sshPublicKeys[0].id"},
			{name: "ErrKeysIDTwice", in: environments.UpdateInput{SSHPublicKeys: keys(key("a", &keyA), key("a", nil))}, field: "spec.sshPublicKeys[1].id"},
			{name: "ErrKeysIDSpace", in: environments.UpdateInput{SSHPublicKeys: keys(key("a b", &keyA))}, field: "spec.sshPublicKeys[0].id"},
			{name: "ErrKeysTwoLines", in: environments.UpdateInput{SSHPublicKeys: keys(key("a", ptr(keyA+"\n"+keyB)))}, field: "spec.sshPublicKeys[0].value"},
			{name: "KeysUpToTheLimit", in: environments.UpdateInput{SSHPublicKeys: manyKeys},
				want: fields{keys: func() []environments.SSHPublicKey {
					var out []environments.SSHPublicKey
					for _, k := range manyKeys {
						out = append(out, environments.SSHPublicKey{ID: k.ID, Value: keyA})
					}
					return out
				}()}},
			{name: "ErrKeysOverTheLimit", in: environments.UpdateInput{SSHPublicKeys: keys(key("one-more", &keyB))}, field: "spec.sshPublicKeys"},
			{name: "KeysRemoveAll", in: environments.UpdateInput{SSHPublicKeys: func() []environments.SSHPublicKeyChange {
				var out []environments.SSHPublicKeyChange
				for _, k := range manyKeys {
					out = append(out, key(k.ID, nil))
				}
				return out
			}()}},

			{name: "TimeoutSet", in: environments.UpdateInput{TimeoutDisconnected: ptr(time.Hour)}, want: fields{timeout: time.Hour}},
			{name: "TimeoutChange", in: environments.UpdateInput{TimeoutDisconnected: ptr(3 * time.Hour)}, want: fields{timeout: 3 * time.Hour}},
			{name: "TimeoutLeftOut", in: environments.UpdateInput{GitEmail: ptr("me@example.test")}, want: fields{timeout: 3 * time.Hour}},
			{name: "ErrTimeoutShort", in: environments.UpdateInput{TimeoutDisconnected: ptr(10 * time.Minute)}, field: "spec.timeout.disconnected"},
			{name: "ErrTimeoutNegative", in: environments.UpdateInput{TimeoutDisconnected: ptr(-time.Hour)}, field: "spec.timeout.disconnected"},
			{name: "ErrOneBadFieldChangesNothing", in: environments.UpdateInput{Ports: ports(web), SSHPublicKeys: keys(key("x", &keyA)), TimeoutDisconnected: ptr(time.Minute)},
				field: "spec.timeout.disconnected"},
			{name: "TimeoutDisable", in: environments.UpdateInput{TimeoutDisconnected: ptr(time.Duration(0))}},

			{name: "AllAtOnce", in: environments.UpdateInput{Ports: ports(web), SSHPublicKeys: keys(key("x", &keyA)), TimeoutDisconnected: ptr(time.Hour)},
				want: fields{ports: []environments.Port{web}, keys: []environments.SSHPublicKey{{ID: "x", Value: keyA}}, timeout: time.Hour}},
			{name: "AllAtOnceAgainIsNoChange", in: environments.UpdateInput{Ports: ports(web), SSHPublicKeys: keys(key("x", &keyA)), TimeoutDisconnected: ptr(time.Hour)},
				want: fields{ports: []environments.Port{web}, keys: []environments.SSHPublicKey{{ID: "x", Value: keyA}}, timeout: time.Hour}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before, err := e.svc.Get(e.admin, x.ID)
				must(t, err, "get")
				changes := len(e.changes)
				tt.in.ID = x.ID
				_, err = e.svc.Update(e.admin, tt.in)
				after, gerr := e.svc.Get(e.admin, x.ID)
				must(t, gerr, "get")
				if tt.field != "" {
					wantErr(t, err, apperr.CodeInvalid, tt.field+": ")
					if !reflect.DeepEqual(after, before) || len(e.changes) != changes {
						t.Fatalf("a refused update changed the environment:\n got %+v\nwant %+v", after, before)
					}
					return
				}
				must(t, err, "update")
				got := fields{after.Spec.Ports, after.Spec.SSHPublicKeys, after.Spec.Timeout.Disconnected}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("after the update %+v, want %+v", got, tt.want)
				}
				wasSpec := fields{before.Spec.Ports, before.Spec.SSHPublicKeys, before.Spec.Timeout.Disconnected}
				specChanged := !reflect.DeepEqual(got, wasSpec) || !reflect.DeepEqual(after.Spec.Content, before.Spec.Content)
				version, calls := before.Spec.SpecVersion, changes
				if specChanged {
					version, calls = version+1, changes+1
				}
				if after.Spec.SpecVersion != version || len(e.changes) != calls {
					t.Errorf("specVersion %d -> %d, Changed calls %d -> %d; spec changed: %v", before.Spec.SpecVersion, after.Spec.SpecVersion, changes, len(e.changes), specChanged)
				}
				// The stop time follows the timeout from the start.
				if d := tt.want.timeout; d > 0 {
					if s := after.StopAfter(); s == nil || !s.Equal(after.LastStartedAt.Add(d)) {
						t.Errorf("StopAfter %v, want lastStartedAt + %s", s, d)
					}
				} else if after.StopAfter() != nil {
					t.Errorf("StopAfter %v without a timeout", after.StopAfter())
				}
			})
		}
	})
}

// TestUpdate_TimeoutReachesTheSweep checks that the inactivity sweep, which
// reads the stop time the store keeps, follows a timeout set, lengthened or
// disabled by an update.
func TestUpdate_TimeoutReachesTheSweep(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		clk := &clock{now: time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)}
		e.svc.Now = clk.Now
		r := e.runner(t, "update-sweep")
		create := func(timeout time.Duration) string {
			t.Helper()
			in := gitInput(environments.DefaultClassID(r.ID))
			in.Spec.Timeout.Disconnected = timeout
			x, err := e.svc.Create(e.admin, in)
			must(t, err, "create")
			return x.ID
		}
		setTimeout := func(id string, d time.Duration) {
			t.Helper()
			_, err := e.svc.Update(e.admin, environments.UpdateInput{ID: id, TimeoutDisconnected: &d})
			must(t, err, "update the timeout")
		}
		desired := func(id string) environments.Phase {
			t.Helper()
			x, err := e.svc.Get(e.admin, id)
			must(t, err, "get")
			return x.Spec.DesiredPhase
		}
		gainsOne := create(0)
		disabled := create(time.Hour)
		lengthened := create(time.Hour)

		clk.advance(50 * time.Minute)
		if n := e.stopInactive(t); n != 0 {
			t.Fatalf("stopped %d before any timeout passed", n)
		}
		// 50 minutes after its start, a 30-minute timeout has passed already.
		setTimeout(gainsOne, 30*time.Minute)
		setTimeout(disabled, 0)
		setTimeout(lengthened, 2*time.Hour)
		if n := e.stopInactive(t); n != 1 || desired(gainsOne) != environments.PhaseStopped {
			t.Fatalf("stopped %d, the one with a new 30m timeout is %s; want it stopped alone", n, desired(gainsOne))
		}
		clk.advance(time.Hour) // 110 minutes since the start
		if n := e.stopInactive(t); n != 0 {
			t.Fatalf("stopped %d; disabled is %s, lengthened is %s", n, desired(disabled), desired(lengthened))
		}
		clk.advance(11 * time.Minute)
		if n := e.stopInactive(t); n != 1 || desired(lengthened) != environments.PhaseStopped || desired(disabled) != environments.PhaseRunning {
			t.Fatalf("stopped %d; lengthened is %s, disabled is %s", n, desired(lengthened), desired(disabled))
		}
	})
}
