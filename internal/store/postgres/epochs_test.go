package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/testutil"
)

// TestRunnerStreamLock checks that a pod claim and a stream's acceptance of
// the same runner order by the runner's stream lock (migration 00045), the
// one thing that keeps a claim from binding pods to an epoch superseded
// meanwhile: while another session holds the lock, each of them waits for
// it (seen in pg_locks) and goes on once it is released.
func TestRunnerStreamLock(t *testing.T) {
	ctx := context.Background()
	st, db := migrated(t)

	const org, streamLockClass = "o", 0x52590007
	runner := uuid.NewString()
	_, err := db.ExecContext(ctx, `INSERT INTO organizations (id, name, created_at) VALUES ($1, 'org', 1)`, org)
	testutil.MustNoErr(t, err, "organization")
	_, err = db.ExecContext(ctx, `INSERT INTO runners (id, org_id, name, kind, provider, spec, status, creator_id,
		creator_principal, created_at, updated_at) VALUES ($1, $2, 'r', 'k', 'p', '{}', '{}', 'u', 'USER', 1, 2)`, runner, org)
	testutil.MustNoErr(t, err, "runner")
	epoch, err := st.AcceptRunnerStream(ctx, org, runner)
	testutil.MustNoErr(t, err, "first stream")

	for _, c := range []struct {
		name string
		call func() error
	}{
		{"a claim", func() error { _, err := st.ClaimRunnerPods(ctx, org, runner, epoch); return err }},
		{"a stream's acceptance", func() error { _, err := st.AcceptRunnerStream(ctx, org, runner); return err }},
	} {
		holder, err := db.BeginTx(ctx, nil)
		testutil.MustNoErr(t, err, "begin")
		_, err = holder.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, streamLockClass, runner)
		testutil.MustNoErr(t, err, "hold the stream lock")

		done := make(chan error, 1)
		go func() { done <- c.call() }()
		for deadline := time.Now().Add(30 * time.Second); ; {
			var waiting int
			err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
				AND classid = $1 AND objsubid = 2 AND NOT granted`, streamLockClass).Scan(&waiting)
			testutil.MustNoErr(t, err, "pg_locks")
			if waiting > 0 {
				break
			}
			select {
			case err := <-done:
				holder.Rollback()
				t.Fatalf("%s ended (%v) without waiting for the runner's stream lock", c.name, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s neither waited for the runner's stream lock nor ended", c.name)
			}
			time.Sleep(5 * time.Millisecond)
		}
		testutil.MustNoErr(t, holder.Rollback(), "release the stream lock")
		select {
		case err := <-done:
			testutil.MustNoErr(t, err, "%s after the lock was released", c.name)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not end once the lock was released", c.name)
		}
	}
}
