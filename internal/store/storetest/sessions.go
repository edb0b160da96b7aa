package storetest

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/store"
)

// testRunnerSessions: the replica holding a runner's stream is recorded,
// replaced by a newer stream, forgotten only by the replica that holds it,
// and never visible to another organization.
func testRunnerSessions(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	runner := uuid.NewString()
	find := func(orgID string) string {
		t.Helper()
		r, err := s.FindRunnerSession(ctx, orgID, runner)
		must(t, err, "find session")
		return r
	}
	if got := find(org.ID); got != "" {
		t.Fatalf("session before any = %q", got)
	}
	must(t, s.RecordRunnerSession(ctx, org.ID, runner, "http://a:8080", base), "record on a")
	if got := find(org.ID); got != "http://a:8080" {
		t.Fatalf("session = %q, want a", got)
	}
	if got := find(other.ID); got != "" {
		t.Fatalf("another organization sees the session on %q", got)
	}
	// The runner reconnects to b; a's late goodbye leaves b's record.
	must(t, s.RecordRunnerSession(ctx, org.ID, runner, "http://b:8080", base.Add(time.Second)), "record on b")
	must(t, s.EndRunnerSession(ctx, runner, "http://a:8080", base), "end on a")
	if got := find(org.ID); got != "http://b:8080" {
		t.Fatalf("session after a's late end = %q, want b", got)
	}
	// A slow record of an older stream does not replace a newer one's.
	must(t, s.RecordRunnerSession(ctx, org.ID, runner, "http://a:8080", base), "late record on a")
	if got := find(org.ID); got != "http://b:8080" {
		t.Fatalf("session after a's late record = %q, want b", got)
	}
	// The runner reconnects to b again; the first stream's goodbye there
	// leaves the second's record.
	must(t, s.RecordRunnerSession(ctx, org.ID, runner, "http://b:8080", base.Add(2*time.Second)), "record again on b")
	must(t, s.EndRunnerSession(ctx, runner, "http://b:8080", base.Add(time.Second)), "end the first stream on b")
	if got := find(org.ID); got != "http://b:8080" {
		t.Fatalf("session after the older stream's end on the same replica = %q, want b", got)
	}
	must(t, s.EndRunnerSession(ctx, runner, "http://b:8080", base.Add(2*time.Second)), "end on b")
	if got := find(org.ID); got != "" {
		t.Fatalf("session after b's end = %q, want none", got)
	}
}
