package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// openCached opens a one-connection database whose connection keeps at
// most size statements, and returns that connection's cache.
func openCached(t *testing.T, size int) (*sql.Conn, *cachingConn) {
	t.Helper()
	c, err := newCachingConnector(dsn(filepath.Join(t.TempDir(), "cache.db"), true))
	if err != nil {
		t.Fatal(err)
	}
	c.(*cachingConnector).size = size
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var cc *cachingConn
	if err := conn.Raw(func(dc any) error { cc = dc.(*cachingConn); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), `CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)`); err != nil {
		t.Fatal(err)
	}
	return conn, cc
}

func TestStmtCache(t *testing.T) {
	ctx := context.Background()
	const insert = `INSERT INTO t (id, name) VALUES (?, ?)`
	const byID = `SELECT name FROM t WHERE id = ?`
	const all = `SELECT id FROM t ORDER BY id`
	tests := []struct {
		name string
		size int
		run  func(t *testing.T, conn *sql.Conn, cc *cachingConn)
		// prepares is how many statements the connection prepared in
		// run: what the cache saved (the table's own CREATE is one more).
		prepares int
	}{{
		name: "a statement run again is not prepared again",
		size: 8,
		run: func(t *testing.T, conn *sql.Conn, cc *cachingConn) {
			for i := range 50 {
				mustExec(t, conn, insert, i, "n"+strconv.Itoa(i))
				if got := name(t, conn, byID, i); got != "n"+strconv.Itoa(i) {
					t.Fatalf("row %d: name %q", i, got)
				}
			}
		},
		prepares: 2,
	}, {
		name: "the same query while its rows are open gets a statement of its own",
		size: 8,
		run: func(t *testing.T, conn *sql.Conn, cc *cachingConn) {
			insertRows(t, conn, insert, 3)
			outer, err := conn.QueryContext(ctx, all)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for outer.Next() {
				var id int
				if err := outer.Scan(&id); err != nil {
					t.Fatal(err)
				}
				// The inner read of the same text must not reset the
				// outer one's statement.
				inner, err := conn.QueryContext(ctx, all)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for inner.Next() {
					n++
				}
				inner.Close()
				if n != 3 {
					t.Fatalf("inner read saw %d rows, want 3", n)
				}
				ids = append(ids, strconv.Itoa(id))
			}
			if err := outer.Err(); err != nil {
				t.Fatal(err)
			}
			outer.Close()
			if got := strings.Join(ids, ","); got != "0,1,2" {
				t.Fatalf("outer read saw %s, want 0,1,2", got)
			}
			// Closed, the outer statement is taken again.
			rows, err := conn.QueryContext(ctx, all)
			if err != nil {
				t.Fatal(err)
			}
			rows.Close()
		},
		prepares: 2, // insert, all; the inner reads prepared unkept ones
	}, {
		name: "a statement evicted while its rows are open is closed with them",
		size: 1,
		run: func(t *testing.T, conn *sql.Conn, cc *cachingConn) {
			insertRows(t, conn, insert, 3)
			rows, err := conn.QueryContext(ctx, all)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for rows.Next() {
				// Each read of another text evicts the one before.
				name(t, conn, byID, n)
				n++
			}
			if err := rows.Err(); err != nil || n != 3 {
				t.Fatalf("rows: %d, %v", n, err)
			}
			rows.Close()
			if cc.lru.Len() != 1 {
				t.Fatalf("%d statements kept, want 1", cc.lru.Len())
			}
		},
		prepares: 3, // insert, all, byID; insert evicted by all, all by byID
	}, {
		name: "a statement that failed is not kept",
		size: 8,
		run: func(t *testing.T, conn *sql.Conn, cc *cachingConn) {
			mustExec(t, conn, insert, 1, "same")
			if _, err := conn.ExecContext(ctx, insert, 2, "same"); err == nil {
				t.Fatal("a duplicate name was inserted")
			}
			mustExec(t, conn, insert, 2, "other")
			if got := name(t, conn, byID, 2); got != "other" {
				t.Fatalf("name %q", got)
			}
		},
		prepares: 3, // insert, insert again after its failure, byID
	}, {
		name: "a kept statement follows a change of the schema",
		size: 8,
		run: func(t *testing.T, conn *sql.Conn, cc *cachingConn) {
			mustExec(t, conn, insert, 1, "a")
			const star = `SELECT * FROM t WHERE id = 1`
			if cols := columns(t, conn, star); cols != 2 {
				t.Fatalf("%d columns", cols)
			}
			mustExec(t, conn, `ALTER TABLE t ADD COLUMN extra TEXT`)
			if cols := columns(t, conn, star); cols != 3 {
				t.Fatalf("%d columns after ALTER TABLE, want 3", cols)
			}
		},
		prepares: 3,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, cc := openCached(t, tc.size)
			before := cc.prepares
			tc.run(t, conn, cc)
			if got := cc.prepares - before; got != tc.prepares {
				t.Errorf("%d statements prepared, want %d", got, tc.prepares)
			}
		})
	}
}

// insertRows inserts rows 0..n-1 named n0, n1, ... with insert.
func insertRows(t *testing.T, conn *sql.Conn, insert string, n int) {
	t.Helper()
	for i := range n {
		mustExec(t, conn, insert, i, "n"+strconv.Itoa(i))
	}
}

func mustExec(t *testing.T, conn *sql.Conn, q string, args ...any) {
	t.Helper()
	if _, err := conn.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func name(t *testing.T, conn *sql.Conn, q string, id int) string {
	t.Helper()
	var n string
	if err := conn.QueryRowContext(context.Background(), q, id).Scan(&n); err != nil {
		t.Fatalf("%s %d: %v", q, id, err)
	}
	return n
}

func columns(t *testing.T, conn *sql.Conn, q string) int {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	return len(cols)
}
