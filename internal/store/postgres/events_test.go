package postgres_test

import (
	"context"
	"testing"

	"github.com/runyard/runyard/internal/testutil"
)

// TestEventNumberingCost numbers events on one connection while the table
// is young, as a replica that starts on a fresh database does, then again
// after the table grew to 50,000 events: numbering one event must not read
// the table. The function once kept the plan it made while the table was
// small, a sequential scan of every event on each call.
func TestEventNumberingCost(t *testing.T) {
	ctx := context.Background()
	_, db := migrated(t)
	conn, err := db.Conn(ctx) // one session: PL/pgSQL keeps its plans per session
	testutil.MustNoErr(t, err, "connection")
	defer conn.Close()

	exec := func(what, query string, args ...any) {
		t.Helper()
		_, err := conn.ExecContext(ctx, query, args...)
		testutil.MustNoErr(t, err, "%s", what)
	}
	addPending := func(n int) {
		t.Helper()
		exec("pending events", `INSERT INTO events (org_id, resource_type, resource_id, operation, created_at)
			SELECT 'o', 'RESOURCE_TYPE_RUNNER', 'pending-' || g, 'RESOURCE_OPERATION_UPDATE', 1 FROM generate_series(1, $1) g`, n)
	}
	// number reads after after in a transaction of its own and returns the
	// positions read and the rows of events it read sequentially.
	number := func(after int64) (positions []int64, seqRead int64) {
		t.Helper()
		tx, err := conn.BeginTx(ctx, nil)
		testutil.MustNoErr(t, err, "begin")
		defer tx.Rollback()
		rows, err := tx.QueryContext(ctx, `SELECT pos FROM runyard_read_events($1, $2, 1000)`, 0x52590006, after)
		testutil.MustNoErr(t, err, "read events")
		for rows.Next() {
			var p int64
			testutil.MustNoErr(t, rows.Scan(&p), "scan")
			positions = append(positions, p)
		}
		testutil.MustNoErr(t, rows.Err(), "read events")
		testutil.MustNoErr(t, tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(seq_tup_read), 0) FROM pg_stat_xact_user_tables
			WHERE relname = 'events' AND schemaname = current_schema()`).Scan(&seqRead), "scan statistics")
		testutil.MustNoErr(t, tx.Commit(), "commit")
		return positions, seqRead
	}
	last := func() int64 {
		t.Helper()
		var n int64
		testutil.MustNoErr(t, conn.QueryRowContext(ctx, `SELECT last FROM events_sequence`).Scan(&n), "sequence")
		return n
	}

	// Young: a few calls, each numbering what came since.
	var after int64
	for range 6 {
		addPending(2)
		got, _ := number(after)
		if len(got) != 2 || got[0] != after+1 || got[1] != after+2 {
			t.Fatalf("numbered %v after %d, want the next two positions", got, after)
		}
		after = got[1]
	}

	// Grown: 50,000 events numbered before.
	const grown = 50_000
	exec("grow", `INSERT INTO events (org_id, resource_type, resource_id, operation, created_at, pos)
		SELECT 'o', 'RESOURCE_TYPE_RUNNER', 'old-' || g, 'RESOURCE_OPERATION_UPDATE', 1, $1 + g FROM generate_series(1, $2) g`, after, grown)
	exec("sequence", `UPDATE events_sequence SET last = $1`, after+grown)
	after += grown

	addPending(3)
	got, seqRead := number(after)
	if len(got) != 3 || got[0] != after+1 || got[2] != after+3 {
		t.Fatalf("numbered %v after %d, want the next three positions", got, after)
	}
	if l := last(); l != after+3 {
		t.Fatalf("events_sequence.last = %d, want %d", l, after+3)
	}
	if seqRead > 1000 {
		t.Fatalf("numbering 3 events read %d rows of a table of %d sequentially", seqRead, grown)
	}

}
