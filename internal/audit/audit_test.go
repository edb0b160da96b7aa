package audit

import (
	"context"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/identity"
)

// TestDraft_Finish: what a call leaves in the log, by what committed and
// how it ended.
func TestDraft_Finish(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	caller := &identity.Caller{OrgID: "org", TokenID: "key", Subject: identity.Subject{ID: "sa", Principal: identity.PrincipalServiceAccount}}
	for _, tc := range []struct {
		name      string
		committed bool
		outcomes  []string
		want      []string // outcomes of the entries Finish returns
	}{
		{"committed and ok: the committed entry only", true, []string{OutcomeOK}, nil},
		{"nothing committed, ok", false, []string{OutcomeOK}, []string{OutcomeOK}},
		{"nothing committed, refused", false, []string{"permission_denied"}, []string{"permission_denied"}},
		{"failed after a commit: a second entry with the error", true, []string{"internal"}, []string{"internal"}},
		{"finished twice (a terminal's upgrade, then its end)", false, []string{OutcomeOK, "internal"}, []string{OutcomeOK}},
		{"a failure is recorded once", true, []string{"internal", "internal"}, []string{"internal"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, d := Begin(identity.NewContext(context.Background(), caller), SurfaceConnect, "x.Service/Create", TypeAPIKey, "127.0.0.1", "test")
			if tc.committed {
				if _, ok := d.Pending(ctx, now); !ok {
					t.Fatal("a new draft is not pending")
				}
				d.MarkWritten()
			}
			var got []string
			for _, o := range tc.outcomes {
				if e, ok := d.Finish(ctx, o, now); ok {
					if e.ActorID != "sa" || e.OrgID != "org" || e.Method != "x.Service/Create" {
						t.Errorf("entry %+v", e)
					}
					got = append(got, e.Outcome)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("entries %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("entries %v, want %v", got, tc.want)
				}
			}
		})
	}
}
