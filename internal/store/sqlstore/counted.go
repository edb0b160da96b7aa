package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/runners"
)

// This file places pods on PostgreSQL without loading the candidates:
// runner_capacity (migration 00009: what placement asks of each runner, and
// its active pods counted by a trigger on pods) lets one query walk the
// runner_capacity_placement index in placement's order and stop at the
// first runner that fits.
//
// Every replica places this way on the same rows, under the organization's
// advisory lock (lockPlacements): the counts a placement reads stay exact
// until it commits, so two placements never both take a runner's last
// place, and each decides exactly as pods.place does on what the database
// holds. (Locking only the chosen runner's row, with SKIP LOCKED, let
// concurrent creates run side by side, but a statement's snapshot could
// predate the placements that committed while it waited, and bench/pods saw
// a runner given 8 pods while fitting ones held none: least-loaded first
// is worth the serialization.)
//
// A new pod that may go on any runner comes here only when its batch did
// not place it (it fits nowhere, or the batch failed): placebatch.go places
// the pods created together in one statement under the same lock, in the
// same query's order.

// counted reports whether this store places with queries (pods.Finder).
func (db *DB) counted() bool { return db.dialect.Name == "postgres" }

// bestQuery finds the runner place chooses: online (its phase, and a
// renewal after $2), not draining, with the agent type ($3, a JSON array of
// one) and all labels ($4, a JSON array), below its maximum; the fewest
// pods, then the lowest seq. The phases, draining and room repeat the
// runner_capacity_placement index's predicate (migration 00012) literally
// so that the planner can prove a row is in it.
var bestQuery = fmt.Sprintf(`SELECT %s, c.active_pods FROM runner_capacity c JOIN runners r ON r.id = c.runner_id
	WHERE c.org_id = $1 AND c.phase IN ('%s', '%s') AND NOT c.draining AND c.active_pods < c.max_pods
	AND r.last_seen > $2 AND c.agent_types @> $3::jsonb AND c.labels @> $4::jsonb
	ORDER BY c.active_pods, c.seq LIMIT 1`, qualifiedRunnerColumns, runners.PhaseActive, runners.PhaseDegraded)

// tallyQuery counts the online runners at each step at which placement
// leaves runners out (pods.Tally), with the same parameters as bestQuery.
var tallyQuery = fmt.Sprintf(`SELECT COUNT(*),
	COUNT(*) FILTER (WHERE NOT c.draining),
	COUNT(*) FILTER (WHERE NOT c.draining AND c.agent_types @> $3::jsonb),
	COUNT(*) FILTER (WHERE %[1]s),
	COALESCE(SUM(c.active_pods) FILTER (WHERE %[1]s), 0),
	COALESCE(SUM(c.max_pods) FILTER (WHERE %[1]s), 0)
	FROM runner_capacity c JOIN runners r ON r.id = c.runner_id
	WHERE c.org_id = $1 AND c.phase IN ('%[2]s', '%[3]s') AND r.last_seen > $2`,
	`NOT c.draining AND c.agent_types @> $3::jsonb AND c.labels @> $4::jsonb`, runners.PhaseActive, runners.PhaseDegraded)

// finder is pods.Finder inside one placement transaction.
type finder struct {
	ctx context.Context
	db  *DB
	tx  *sql.Tx
	f   pods.CandidateFilter
	// tallies holds the tally of each demand that fit nowhere in this
	// transaction: placements in it only fill runners, and a runner that
	// fits a demand that fit nowhere is full, so the tally stays what it
	// was. (Pods that others end meanwhile may free places: Best, which
	// is asked first every time, sees them.)
	tallies map[string]pods.Tally
}

func (db *DB) newFinder(ctx context.Context, tx *sql.Tx, f pods.CandidateFilter) *finder {
	return &finder{ctx: ctx, db: db, tx: tx, f: f, tallies: map[string]pods.Tally{}}
}

// demand returns p's agent type and labels as the JSON arrays the queries
// compare with.
func demand(p *pods.Pod) (agent, labels string, err error) {
	a, err := json.Marshal([]string{p.AgentTypeID})
	if err != nil {
		return "", "", fmt.Errorf("encode agent type: %w", err)
	}
	l, err := json.Marshal(nonNil(p.Labels))
	if err != nil {
		return "", "", fmt.Errorf("encode labels: %w", err)
	}
	return string(a), string(l), nil
}

func (fd *finder) Best(p *pods.Pod) (*pods.Candidate, error) {
	agent, labels, err := demand(p)
	if err != nil {
		return nil, err
	}
	c := &pods.Candidate{}
	r, err := scanRunner(withExtra(fd.tx.QueryRowContext(fd.ctx, bestQuery, fd.f.OrgID, micros(fd.f.LiveAfter), agent, labels), &c.Pods))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.Runner = r
	return c, nil
}

func (fd *finder) Tally(p *pods.Pod) (pods.Tally, error) {
	agent, labels, err := demand(p)
	if err != nil {
		return pods.Tally{}, err
	}
	key := agent + labels
	if t, ok := fd.tallies[key]; ok {
		return t, nil
	}
	var t pods.Tally
	err = fd.tx.QueryRowContext(fd.ctx, tallyQuery, fd.f.OrgID, micros(fd.f.LiveAfter), agent, labels).
		Scan(&t.Online, &t.Working, &t.WithAgent, &t.Fitting, &t.Pods, &t.Capacity)
	if err != nil {
		return pods.Tally{}, err
	}
	fd.tallies[key] = t
	return t, nil
}

func (fd *finder) Requested(seq int64) (*pods.Candidate, error) {
	return fd.db.candidateBySeq(fd.ctx, fd.tx, fd.f.OrgID, seq)
}

// createCounted is CreatePlacedPod with a finder.
func (db *DB) createCounted(ctx context.Context, p *pods.Pod, f pods.CandidateFilter) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := db.lockPlacements(ctx, tx, f.OrgID); err != nil {
			return err
		}
		if err := f.Counted(p, db.newFinder(ctx, tx, f)); err != nil {
			return err
		}
		return insertPod(db.txRow(ctx, tx), p)
	})
	return db.translate(err, fmt.Sprintf("pod %q", p.Key))
}

// placePendingCounted is PlacePendingPods with a finder. The trigger counts
// each pod it places; one it could not store (ended meanwhile) counts
// nowhere.
func (db *DB) placePendingCounted(ctx context.Context, f pods.CandidateFilter) ([]*pods.Pod, error) {
	var placed []*pods.Pod
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := db.lockPlacements(ctx, tx, f.OrgID); err != nil {
			return err
		}
		fd := db.newFinder(ctx, tx, f)
		var err error
		placed, err = db.placePending(ctx, tx, f, func(p *pods.Pod) error { return f.Counted(p, fd) }, func(*pods.Pod) {})
		return err
	})
	return placed, err
}
