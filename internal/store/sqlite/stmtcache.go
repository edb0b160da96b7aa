package sqlite

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"modernc.org/sqlite"
)

// The driver's one-shot Exec and Query parse and plan their statement on
// every call: for an UpdateRunner that was about 40% of the control
// plane's CPU (bench/events, 1,000 changes a second). Each connection here
// keeps the statements it ran, by their text, and runs them again without
// parsing; SQLite re-plans a kept statement by itself when the schema
// changes. A connection is used by one goroutine at a time (database/sql),
// so the cache needs no lock; a statement still read by open rows is not
// shared: a second query of the same text on that connection prepares one
// of its own, closed with its rows.

// stmtCacheSize bounds the statements one connection keeps; the least
// recently used goes first.
const stmtCacheSize = 128

// cachingConnector opens modernc connections that keep their statements.
type cachingConnector struct {
	base driver.Connector
	size int
}

func newCachingConnector(dsn string) (driver.Connector, error) {
	base, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return &cachingConnector{base: base, size: stmtCacheSize}, nil
}

func (c *cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	// The wrapper calls these directly; a driver without them would be
	// a different driver.
	if _, ok := dc.(interface {
		driver.ConnPrepareContext
		driver.ConnBeginTx
		driver.SessionResetter
		driver.Validator
		driver.Pinger
	}); !ok {
		dc.Close()
		return nil, fmt.Errorf("sqlite connection %T lacks the context methods", dc)
	}
	return &cachingConn{Conn: dc, size: c.size, byQuery: map[string]*list.Element{}, lru: list.New()}, nil
}

func (c *cachingConnector) Driver() driver.Driver { return c.base.Driver() }

type cachedStmt struct {
	query string
	stmt  driver.Stmt
	// busy: open rows read from stmt; closeAfter: it was evicted (or
	// failed) meanwhile and is closed when they are.
	busy, closeAfter bool
}

type cachingConn struct {
	driver.Conn
	size    int
	byQuery map[string]*list.Element // of *cachedStmt
	lru     *list.List               // front: most recently used
	// prepares counts the statements this connection prepared (tests).
	prepares int
}

// take returns the kept statement for query, preparing and keeping it on
// first use; a statement in use by open rows is not returned (ok false).
func (c *cachingConn) take(ctx context.Context, query string) (cs *cachedStmt, ok bool, err error) {
	if el, found := c.byQuery[query]; found {
		cs := el.Value.(*cachedStmt)
		if cs.busy {
			return nil, false, nil
		}
		c.lru.MoveToFront(el)
		return cs, true, nil
	}
	stmt, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, false, err
	}
	c.prepares++
	cs = &cachedStmt{query: query, stmt: stmt}
	c.byQuery[query] = c.lru.PushFront(cs)
	for c.lru.Len() > c.size {
		c.evict(c.lru.Back())
	}
	return cs, true, nil
}

// evict forgets el's statement, closing it now or, while rows read it,
// when they close.
func (c *cachingConn) evict(el *list.Element) {
	cs := el.Value.(*cachedStmt)
	c.lru.Remove(el)
	delete(c.byQuery, cs.query)
	if cs.busy {
		cs.closeAfter = true
		return
	}
	cs.stmt.Close()
}

// failed drops a statement whose run failed: whatever state the error
// left it in is not kept for the next caller.
func (c *cachingConn) failed(cs *cachedStmt) {
	if el, ok := c.byQuery[cs.query]; ok && el.Value == cs {
		c.evict(el)
	}
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, ok, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if !ok {
		return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
	}
	res, err := cs.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
	if err != nil {
		c.failed(cs)
	}
	return res, err
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, ok, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if !ok {
		return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
	}
	rows, err := cs.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		c.failed(cs)
		return nil, err
	}
	cs.busy = true
	return &cachedRows{Rows: rows, cs: cs}, nil
}

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *cachingConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

func (c *cachingConn) Ping(ctx context.Context) error { return c.Conn.(driver.Pinger).Ping(ctx) }

func (c *cachingConn) Close() error {
	var errs []error
	for el := c.lru.Front(); el != nil; el = el.Next() {
		if err := el.Value.(*cachedStmt).stmt.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	c.lru.Init()
	clear(c.byQuery)
	return errors.Join(append(errs, c.Conn.Close())...)
}

// cachedRows gives its statement back when closed.
type cachedRows struct {
	driver.Rows
	cs     *cachedStmt
	closed bool
}

func (r *cachedRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.Rows.Close()
	r.cs.busy = false
	if r.cs.closeAfter {
		r.cs.stmt.Close()
	}
	return err
}

var (
	_ driver.ExecerContext      = (*cachingConn)(nil)
	_ driver.QueryerContext     = (*cachingConn)(nil)
	_ driver.ConnPrepareContext = (*cachingConn)(nil)
	_ driver.ConnBeginTx        = (*cachingConn)(nil)
	_ driver.SessionResetter    = (*cachingConn)(nil)
	_ driver.Validator          = (*cachingConn)(nil)
	_ driver.Pinger             = (*cachingConn)(nil)
)
