package console_test

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/testutil"
)

// TestConsole_AgentEdit posts the agents page's edit form over HTTP, as a
// signed-in admin with the session's CSRF token, on both databases: the
// name and command change, a variable is set, one replaced and one
// removed by name, and the others keep values no page ever shows. A bad
// "set" line, a variable to remove that is gone, a blank command and a
// built-in type are refused with the field named and change nothing; an
// audit reader may not edit.
func TestConsole_AgentEdit(t *testing.T) {
	// Values of the type's variables: no answer may hold one.
	const keyOne, keyTwo, modeValue, regionValue = "key-one-never-shown", "key-two-never-shown", "mode-never-shown", "region-never-shown"
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			e := newEnv(t, backend)
			st := e.ts.OpenStore(t)
			ctx := context.Background()
			org, err := st.FindOrganizationByName(ctx, identity.DefaultOrganization)
			if err != nil {
				t.Fatal(err)
			}
			mustUser(t, st, "ada@example.com", org.ID, identity.RoleAdmin)
			mustUser(t, st, "cy@example.com", org.ID, identity.RoleAuditReader)
			ada, cy := e.signIn(t, "ada@example.com"), e.signIn(t, "cy@example.com")
			want := func(t *testing.T, s *session, method, path string, form url.Values, status int, mention ...string) string {
				t.Helper()
				b := s.want(t, method, path, form, status, mention...)
				for _, v := range []string{keyOne, keyTwo, modeValue, regionValue} {
					if strings.Contains(b, v) {
						t.Fatalf("%s %s answers with a variable's value %q", method, path, v)
					}
				}
				return b
			}
			stored := func(t *testing.T) *pods.AgentType {
				t.Helper()
				a, err := st.FindAgentType(ctx, org.ID, "my-agent")
				if err != nil {
					t.Fatalf("find agent type: %v", err)
				}
				return a
			}
			wantStored := func(t *testing.T, what string, want *pods.AgentType) {
				t.Helper()
				if got := stored(t); got.Name != want.Name || !slices.Equal(got.Command, want.Command) || !maps.Equal(got.Env, want.Env) {
					t.Errorf("%s: stored %+v, want %+v", what, got, want)
				}
			}

			want(t, ada, http.MethodPost, "/agents/new", url.Values{"id": {"my-agent"}, "name": {"Mine"},
				"command": {"sh\r\n-c\r\necho {{prompt}}\r\n"}, "env": {"API_KEY=" + keyOne + "\r\nMODE=" + modeValue + "\r\n"}}, http.StatusSeeOther)
			page := want(t, ada, http.MethodGet, "/agents", nil, http.StatusOK,
				`data-agent-edit="my-agent"`, `action="/agents/my-agent/edit"`, `name="unset" value="API_KEY"`, `name="unset" value="MODE"`,
				"Save my-agent", `<summary aria-label="Edit my-agent">`)
			if strings.Contains(page, "/agents/codex/edit") {
				t.Errorf("a built-in type has an edit form")
			}
			if b := want(t, cy, http.MethodGet, "/agents", nil, http.StatusOK, `data-agent="my-agent"`); strings.Contains(b, "/edit") {
				t.Errorf("an audit reader is offered the edit form")
			}
			want(t, cy, http.MethodPost, "/agents/my-agent/edit", url.Values{"name": {"Cy's"}, "command": {"sh"}}, http.StatusForbidden, "pods:write")

			// The edit: what the form sends when a user renames the type,
			// puts a new command, sets REGION, replaces API_KEY and ticks MODE
			// to remove it.
			want(t, ada, http.MethodPost, "/agents/my-agent/edit", url.Values{"name": {" Renamed "}, "command": {"/bin/echo\r\n{{prompt}}\r\n"},
				"set": {"REGION=" + regionValue + "\r\nAPI_KEY=" + keyTwo + "\r\n"}, "unset": {"MODE"}}, http.StatusSeeOther)
			edited := &pods.AgentType{Name: "Renamed", Command: []string{"/bin/echo", "{{prompt}}"},
				Env: map[string]string{"API_KEY": keyTwo, "REGION": regionValue}}
			wantStored(t, "after the edit", edited)
			page = want(t, ada, http.MethodGet, "/agents", nil, http.StatusOK,
				"<td>Renamed</td>", "/bin/echo {{prompt}}", `name="unset" value="API_KEY"`, `name="unset" value="REGION"`, `value="Renamed"`)
			if strings.Contains(page, `value="MODE"`) || strings.Contains(page, `>MODE<`) {
				t.Errorf("the removed variable is still listed:\n%.4000s", page)
			}
			// Only the name and command: the variables keep their values.
			want(t, ada, http.MethodPost, "/agents/my-agent/edit", url.Values{"name": {"Renamed again"}, "command": {"/bin/echo\n{{prompt}}"}}, http.StatusSeeOther)
			edited.Name = "Renamed again"
			wantStored(t, "after an edit of the name", edited)

			// Refused, with the field named; nothing changes, not even the
			// name sent along.
			for _, tt := range []struct {
				name    string
				form    url.Values
				mention []string
			}{
				{"ErrSetNoEquals", url.Values{"name": {"Lost"}, "command": {"sh"}, "set": {"REGION=eu\r\nNO_EQUALS_SIGN\r\n"}},
					[]string{"Check what you entered", "set: line 2: must be NAME=value", "NO_EQUALS_SIGN"}},
				{"ErrSetName", url.Values{"name": {"Lost"}, "command": {"sh"}, "set": {"BAD-NAME=1"}},
					[]string{"setEnv: ", "BAD-NAME"}},
				{"ErrUnsetGone", url.Values{"name": {"Lost"}, "command": {"sh"}, "unset": {"API_KEY", "MODE"}},
					[]string{"unsetEnv[1]: ", "MODE"}},
				{"ErrBlankName", url.Values{"name": {" "}, "command": {"sh"}}, []string{"name: "}},
				{"ErrBlankCommand", url.Values{"name": {"Lost"}, "command": {"\r\n"}}, []string{"command: "}},
			} {
				t.Run(tt.name, func(t *testing.T) {
					b := want(t, ada, http.MethodPost, "/agents/my-agent/edit", tt.form, http.StatusBadRequest, tt.mention...)
					// The page comes back whole: the list, with its forms.
					if !strings.Contains(b, `data-agent-edit="my-agent"`) || !strings.Contains(b, `action="/agents/new"`) {
						t.Errorf("the refused form's page lacks the list or its forms:\n%.4000s", b)
					}
					wantStored(t, "after a refused edit", edited)
				})
			}
			want(t, ada, http.MethodPost, "/agents/codex/edit", url.Values{"name": {"Mine"}, "command": {"codex"}, "set": {"A=1"}}, http.StatusBadRequest, "built-in")
			want(t, ada, http.MethodPost, "/agents/no-such-agent/edit", url.Values{"name": {"X"}, "command": {"x"}}, http.StatusNotFound, "no-such-agent")
			wantStored(t, "after refused edits of other types", edited)
		})
	}
}
