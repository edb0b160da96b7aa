package pods_test

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/store/sqlite"
)

// agentService is a pods service on a new SQLite store with one
// organization, and a caller of it that may read and write pods.
func agentService(t *testing.T) (*pods.Service, context.Context) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "runyard.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	org := &identity.Organization{ID: uuid.NewString(), Name: "agents", CreatedAt: now, UpdatedAt: now}
	if err := db.CreateOrganization(ctx, org); err != nil {
		t.Fatalf("create organization: %v", err)
	}
	s := &pods.Service{Store: db, Now: func() time.Time { return now }}
	return s, identity.NewContext(ctx, &identity.Caller{OrgID: org.ID,
		Scopes: []identity.Scope{identity.ScopePodsRead, identity.ScopePodsWrite}})
}

func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if e := apperr.As(err); err == nil || e.Code != apperr.CodeInvalid || e.Field != field {
		t.Fatalf("error = %v, want invalid_argument of field %q", err, field)
	}
}

// TestService_UpdateAgentTypeSetUnsetEnv changes an agent type's
// variables by name, as the console's edit form does without ever seeing
// their values: SetEnv adds and replaces, UnsetEnv removes, the others
// stay. A refused update changes nothing.
func TestService_UpdateAgentTypeSetUnsetEnv(t *testing.T) {
	s, as := agentService(t)
	name := func(s string) *string { return &s }
	start := map[string]string{"API_KEY": "k-1", "MODE": "test"}
	for i, tt := range []struct {
		name string
		u    pods.AgentTypeUpdate
		// want is the type's variables after the update; field, when
		// set, the field an update refused with invalid_argument names.
		want  map[string]string
		field string
	}{
		{"SetAdds", pods.AgentTypeUpdate{SetEnv: map[string]string{"REGION": "eu"}},
			map[string]string{"API_KEY": "k-1", "MODE": "test", "REGION": "eu"}, ""},
		{"SetReplaces", pods.AgentTypeUpdate{SetEnv: map[string]string{"API_KEY": "k-2"}},
			map[string]string{"API_KEY": "k-2", "MODE": "test"}, ""},
		{"SetEmptyValue", pods.AgentTypeUpdate{SetEnv: map[string]string{"MODE": ""}},
			map[string]string{"API_KEY": "k-1", "MODE": ""}, ""},
		{"Unset", pods.AgentTypeUpdate{UnsetEnv: []string{"API_KEY"}},
			map[string]string{"MODE": "test"}, ""},
		{"UnsetAll", pods.AgentTypeUpdate{UnsetEnv: []string{"MODE", "API_KEY"}},
			map[string]string{}, ""},
		{"SetAndUnset", pods.AgentTypeUpdate{SetEnv: map[string]string{"REGION": "eu"}, UnsetEnv: []string{"API_KEY"}},
			map[string]string{"MODE": "test", "REGION": "eu"}, ""},
		// Removed, then set: the new value.
		{"UnsetThenSetSame", pods.AgentTypeUpdate{SetEnv: map[string]string{"API_KEY": "k-3"}, UnsetEnv: []string{"API_KEY"}},
			map[string]string{"API_KEY": "k-3", "MODE": "test"}, ""},
		{"WithNameAndCommand", pods.AgentTypeUpdate{Name: name("Renamed"), Command: []string{"/bin/echo", "{{prompt}}"},
			UnsetEnv: []string{"MODE"}}, map[string]string{"API_KEY": "k-1"}, ""},

		{"ErrUnsetMissing", pods.AgentTypeUpdate{UnsetEnv: []string{"NOPE"}}, nil, "unsetEnv[0]"},
		// The first is there and would go: nothing does.
		{"ErrUnsetMissingSecond", pods.AgentTypeUpdate{UnsetEnv: []string{"MODE", "NOPE"}}, nil, "unsetEnv[1]"},
		{"ErrUnsetMissingWithSet", pods.AgentTypeUpdate{SetEnv: map[string]string{"REGION": "eu"}, UnsetEnv: []string{"NOPE"}}, nil, "unsetEnv[0]"},
		{"ErrUnsetTwice", pods.AgentTypeUpdate{UnsetEnv: []string{"MODE", "MODE"}}, nil, "unsetEnv[1]"},
		{"ErrEnvAndSet", pods.AgentTypeUpdate{Env: map[string]string{"A": "1"}, SetEnv: map[string]string{"B": "2"}}, nil, "env"},
		{"ErrEnvAndUnset", pods.AgentTypeUpdate{Env: map[string]string{}, UnsetEnv: []string{"MODE"}}, nil, "env"},
		{"ErrNothing", pods.AgentTypeUpdate{}, nil, "name"},
		{"ErrNothingEmpty", pods.AgentTypeUpdate{SetEnv: map[string]string{}, UnsetEnv: []string{}}, nil, "name"},
		{"ErrSetName", pods.AgentTypeUpdate{SetEnv: map[string]string{"A-B": "1"}}, nil, "setEnv"},
		{"ErrSetReserved", pods.AgentTypeUpdate{SetEnv: map[string]string{"RUNYARD_POD_KEY": "1"}}, nil, "setEnv"},
		{"ErrSetWithBadName", pods.AgentTypeUpdate{Name: name(" "), SetEnv: map[string]string{"REGION": "eu"}}, nil, "name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("agent-%d", i)
			created, err := s.CreateAgentType(as, pods.AgentTypeInput{ID: id, Name: "Agent", Command: []string{"sh", "-c", "echo {{prompt}}"}, Env: maps.Clone(start)})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			want := *created
			upd, err := s.UpdateAgentType(as, id, tt.u)
			if tt.field != "" {
				wantInvalid(t, err, tt.field)
			} else {
				if err != nil {
					t.Fatalf("update: %v", err)
				}
				want.Env = tt.want
				if tt.u.Name != nil {
					want.Name = *tt.u.Name
				}
				if tt.u.Command != nil {
					want.Command = tt.u.Command
				}
				if !reflect.DeepEqual(upd, &want) {
					t.Errorf("updated = %+v, want %+v", upd, &want)
				}
			}
			got, err := s.AgentType(as, id)
			if err != nil {
				t.Fatalf("read back: %v", err)
			}
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("stored = %+v, want %+v", got, &want)
			}
		})
	}

	t.Run("ErrBuiltin", func(t *testing.T) {
		for _, u := range []pods.AgentTypeUpdate{
			{SetEnv: map[string]string{"A": "1"}},
			{UnsetEnv: []string{"A"}},
		} {
			_, err := s.UpdateAgentType(as, "codex", u)
			wantInvalid(t, err, "id")
		}
		codex, err := s.AgentType(as, "codex")
		if err != nil || !codex.Builtin || len(codex.Env) != 0 {
			t.Errorf("codex after refused updates = %+v, %v", codex, err)
		}
	})
	t.Run("ErrUnknown", func(t *testing.T) {
		_, err := s.UpdateAgentType(as, "no-such-agent", pods.AgentTypeUpdate{SetEnv: map[string]string{"A": "1"}})
		if apperr.CodeOf(err) != apperr.CodeNotFound {
			t.Errorf("error = %v, want not_found", err)
		}
	})
	t.Run("ErrReadOnly", func(t *testing.T) {
		c, _ := identity.FromContext(as)
		ro := identity.NewContext(context.Background(), &identity.Caller{OrgID: c.OrgID, Scopes: []identity.Scope{identity.ScopePodsRead}})
		_, err := s.UpdateAgentType(ro, "agent-0", pods.AgentTypeUpdate{UnsetEnv: []string{"REGION"}})
		if apperr.CodeOf(err) != apperr.CodePermissionDenied {
			t.Errorf("error = %v, want permission_denied", err)
		}
	})
}
