package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"github.com/runyard/runyard/internal/audit"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/runners"
)

const runnerColumns = `seq, id, org_id, name, kind, provider, runner_manager_id, spec, metrics_password, status,
	creator_id, creator_principal, created_at, updated_at, phase, last_seen, report, deleted_at`

// live restricts a query of runners to those that are not tombstones
// (migration 00010). Every read but FindRunnerOrTombstone has it: to the rest
// of the control plane a deleted runner is gone.
const live = ` AND deleted_at = 0`

// qualifiedRunnerColumns is runnerColumns of a runners table named r.
var qualifiedRunnerColumns = func() string {
	cols := strings.Split(runnerColumns, ",")
	for i, c := range cols {
		cols[i] = "r." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

func scanRunner(row interface{ Scan(...any) error }) (*runners.Runner, error) {
	var r runners.Runner
	var kind, provider, spec, status, creatorPrincipal, phase, report string
	var created, updated, lastSeen, deleted int64
	if err := row.Scan(&r.Seq, &r.ID, &r.OrgID, &r.Name, &kind, &provider, &r.RunnerManagerID, &spec,
		&r.Spec.Configuration.Metrics.Password, &status, &r.Creator.ID, &creatorPrincipal, &created, &updated,
		&phase, &lastSeen, &report, &deleted); err != nil {
		return nil, err
	}
	password := r.Spec.Configuration.Metrics.Password
	if err := specDocs.decode(spec, &r.Spec); err != nil {
		return nil, fmt.Errorf("decode spec of runner %q: %w", r.ID, err)
	}
	r.Spec.Configuration.Metrics.Password = password
	if err := statusDocs.decode(status, &r.Status); err != nil {
		return nil, fmt.Errorf("decode status of runner %q: %w", r.ID, err)
	}
	if err := reportDocs.decode(report, &r.Report); err != nil {
		return nil, fmt.Errorf("decode report of runner %q: %w", r.ID, err)
	}
	r.Status.Phase = runners.Phase(phase)
	if lastSeen > 0 {
		r.LastSeen = fromMicros(lastSeen)
	}
	if deleted > 0 {
		r.DeletedAt = fromMicros(deleted)
	}
	r.Kind, r.Provider = runners.Kind(kind), runners.Provider(provider)
	r.Creator.Principal = identity.Principal(creatorPrincipal)
	r.CreatedAt, r.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &r, nil
}

// runnerDocs encodes the JSON columns. The metrics password stays out of the
// spec document (Metrics.Password is not marshalled) in its own column.
func runnerDocs(r *runners.Runner) (spec, status, report string, err error) {
	s, err := json.Marshal(r.Spec)
	if err != nil {
		return "", "", "", fmt.Errorf("encode spec: %w", err)
	}
	st, err := json.Marshal(r.Status)
	if err != nil {
		return "", "", "", fmt.Errorf("encode status: %w", err)
	}
	rep, err := json.Marshal(r.Report)
	if err != nil {
		return "", "", "", fmt.Errorf("encode report: %w", err)
	}
	return string(s), string(st), string(rep), nil
}

// capacity is what placement asks of a runner, as runner_capacity holds it
// beside the runner (migration 00009): its maximum, whether it drains, and
// its agent types and labels as JSON arrays.
type capacity struct {
	maxPods            int
	draining           bool
	agentTypes, labels string
}

func capacityOf(r *runners.Runner) (capacity, error) {
	// The column says whether placement passes the runner over, which
	// also covers a pod manager its daemon reports unhealthy.
	c := capacity{maxPods: r.Report.MaxPods, draining: r.TakesNoPods()}
	at, err := json.Marshal(nonNil(r.Report.AgentTypes))
	if err != nil {
		return capacity{}, fmt.Errorf("encode agent types: %w", err)
	}
	ls, err := json.Marshal(nonNil(r.Report.Labels))
	if err != nil {
		return capacity{}, fmt.Errorf("encode labels: %w", err)
	}
	c.agentTypes, c.labels = string(at), string(ls)
	return c, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func lastSeenOf(r *runners.Runner) int64 {
	if r.LastSeen.IsZero() {
		return 0
	}
	return micros(r.LastSeen)
}

func deletedAtOf(r *runners.Runner) int64 {
	if r.DeletedAt.IsZero() {
		return 0
	}
	return micros(r.DeletedAt)
}

func (db *DB) CreateRunner(ctx context.Context, r *runners.Runner, x *identity.ExchangeToken) error {
	audit.SetObject(ctx, "RESOURCE_TYPE_RUNNER", r.ID)
	spec, status, report, err := runnerDocs(r)
	if err != nil {
		return err
	}
	c, err := capacityOf(r)
	if err != nil {
		return err
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, db.q(`INSERT INTO runners (id, org_id, name, kind, provider, runner_manager_id,
			spec, metrics_password, status, creator_id, creator_principal, created_at, updated_at, phase, last_seen, report)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
			r.ID, r.OrgID, r.Name, string(r.Kind), string(r.Provider), r.RunnerManagerID, spec,
			r.Spec.Configuration.Metrics.Password, status, r.Creator.ID, string(r.Creator.Principal),
			micros(r.CreatedAt), micros(r.UpdatedAt), string(r.Status.Phase), lastSeenOf(r), report).Scan(&r.Seq)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO runner_capacity (runner_id, org_id, seq, phase, max_pods, draining,
			agent_types, labels) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			r.ID, r.OrgID, r.Seq, string(r.Status.Phase), c.maxPods, c.draining, c.agentTypes, c.labels)
		if err != nil {
			return err
		}
		if x != nil {
			return db.insertExchangeToken(ctx, tx, x)
		}
		return nil
	})
	// Dropped whatever the outcome: a commit whose answer was lost
	// still changed the pages.
	db.viewChanged(r.OrgID, r.ID, true)
	return db.translate(err, fmt.Sprintf("runner %q", r.Name))
}

func (db *DB) FindRunnerByID(ctx context.Context, orgID, id string) (*runners.Runner, error) {
	r, err := scanRunner(db.readRow(ctx, `SELECT `+runnerColumns+` FROM runners WHERE org_id = ? AND id = ?`+live, orgID, id))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("runner %q", id))
	}
	return r, nil
}

func (db *DB) FindRunnerOrTombstone(ctx context.Context, orgID, id string) (*runners.Runner, error) {
	r, err := scanRunner(db.readRow(ctx, `SELECT `+runnerColumns+` FROM runners WHERE org_id = ? AND id = ?`, orgID, id))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("runner %q", id))
	}
	return r, nil
}

func (db *DB) FindRunnerBySeq(ctx context.Context, orgID string, seq int64) (*runners.Runner, error) {
	r, err := scanRunner(db.readRow(ctx, `SELECT `+runnerColumns+` FROM runners WHERE org_id = ? AND seq = ?`+live, orgID, seq))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("runner %d", seq))
	}
	return r, nil
}

func (db *DB) FindRunnerByName(ctx context.Context, orgID, name string) (*runners.Runner, error) {
	r, err := scanRunner(db.readRow(ctx, `SELECT `+runnerColumns+` FROM runners WHERE org_id = ? AND name = ?`+live, orgID, name))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("runner %q", name))
	}
	return r, nil
}

// likeEscaper makes text match itself in a LIKE pattern with ESCAPE '!'.
var likeEscaper = strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")

func (db *DB) FindRunners(ctx context.Context, f runners.Filter) ([]*runners.Runner, error) {
	query := `SELECT ` + runnerColumns + ` FROM runners WHERE org_id = ? AND seq > ?` + live
	args := []any{f.OrgID, f.After}
	if len(f.CreatorIDs) > 0 {
		query += ` AND creator_id IN ` + in(len(f.CreatorIDs))
		for _, v := range f.CreatorIDs {
			args = append(args, v)
		}
	}
	if len(f.Kinds) > 0 {
		query += ` AND kind IN ` + in(len(f.Kinds))
		for _, v := range f.Kinds {
			args = append(args, string(v))
		}
	}
	if len(f.Providers) > 0 {
		query += ` AND provider IN ` + in(len(f.Providers))
		for _, v := range f.Providers {
			args = append(args, string(v))
		}
	}
	if len(f.Phases) > 0 {
		query += ` AND phase IN ` + in(len(f.Phases))
		for _, v := range f.Phases {
			args = append(args, string(v))
		}
	}
	if len(f.DesiredPhases) > 0 {
		desired := "json_extract(spec, '$.desiredPhase')"
		if db.dialect.Numbered {
			desired = "(spec::jsonb ->> 'desiredPhase')"
		}
		query += ` AND ` + desired + ` IN ` + in(len(f.DesiredPhases))
		for _, v := range f.DesiredPhases {
			args = append(args, string(v))
		}
	}
	if f.NameContains != "" {
		// LOWER folds ASCII letters alike in SQLite and PostgreSQL.
		query += ` AND LOWER(name) LIKE ? ESCAPE '!'`
		args = append(args, "%"+likeEscaper.Replace(strings.ToLower(f.NameContains))+"%")
	}
	query += ` ORDER BY seq`
	var rows *sql.Rows
	var err error
	if len(args) == 2 {
		// A page without filters, what lists and the console ask for
		// most: one statement prepared once, the limit a parameter
		// (-1, no limit, on SQLite; NULL on PostgreSQL).
		var limit any = f.Limit
		if f.Limit <= 0 {
			limit = nil
			if db.dialect.Name != "postgres" {
				limit = -1
			}
		}
		rows, err = db.readQuery(ctx, query+` LIMIT ?`, append(args, limit)...)
	} else {
		if f.Limit > 0 {
			query += fmt.Sprintf(` LIMIT %d`, f.Limit)
		}
		rows, err = db.read.QueryContext(ctx, db.q(query), args...)
	}
	if err != nil {
		return nil, db.translate(err, "runners")
	}
	defer rows.Close()
	var out []*runners.Runner
	for rows.Next() {
		if out == nil && f.Limit > 0 {
			out = make([]*runners.Runner, 0, min(f.Limit, 128))
		}
		r, err := scanRunner(rows)
		if err != nil {
			return nil, db.translate(err, "runners")
		}
		out = append(out, r)
	}
	return out, db.translate(rows.Err(), "runners")
}

func (db *DB) UpdateRunner(ctx context.Context, orgID, id string, fn func(*runners.Runner) error) (*runners.Runner, error) {
	var out *runners.Runner
	err := db.tx(ctx, func(tx *sql.Tx) error {
		r, err := db.updateRunner(ctx, tx, orgID, id, func(r *runners.Runner) error {
			if err := fn(r); err != nil {
				return err
			}
			if r.Deleted() {
				// Only DeleteRunner makes tombstones: it also deletes the
				// tokens.
				return fmt.Errorf("runner %q: UpdateRunner cannot set DeletedAt", id)
			}
			return nil
		})
		out = r
		return err
	})
	db.viewChanged(orgID, id, false)
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("runner %q", id))
	}
	return out, nil
}

// updateRunner loads the runner that is not a tombstone, locked, applies fn
// and writes it back with its capacity row, in tx.
func (db *DB) updateRunner(ctx context.Context, tx *sql.Tx, orgID, id string, fn func(*runners.Runner) error) (*runners.Runner, error) {
	r, err := scanRunner(tx.QueryRowContext(ctx,
		db.q(`SELECT `+runnerColumns+` FROM runners WHERE org_id = ? AND id = ?`+live+db.dialect.LockRow), orgID, id))
	if err != nil {
		return nil, err
	}
	if err := fn(r); err != nil {
		return nil, err
	}
	spec, status, report, err := runnerDocs(r)
	if err != nil {
		return nil, err
	}
	c, err := capacityOf(r)
	if err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, db.q(`UPDATE runners SET name = ?, spec = ?, metrics_password = ?, status = ?,
		updated_at = ?, phase = ?, last_seen = ?, report = ?, deleted_at = ? WHERE org_id = ? AND id = ?`),
		r.Name, spec, r.Spec.Configuration.Metrics.Password, status, micros(r.UpdatedAt),
		string(r.Status.Phase), lastSeenOf(r), report, deletedAtOf(r), orgID, id)
	if err != nil {
		return nil, err
	}
	// Skipped when nothing placement reads changed: a daemon's report
	// of the same capacity would otherwise wait for the placements that
	// hold the row.
	_, err = tx.ExecContext(ctx, db.q(`UPDATE runner_capacity SET phase = ?, max_pods = ?, draining = ?, agent_types = ?,
		labels = ? WHERE runner_id = ? AND NOT (phase = ? AND max_pods = ? AND draining = ? AND agent_types = ? AND labels = ?)`),
		string(r.Status.Phase), c.maxPods, c.draining, c.agentTypes, c.labels, id,
		string(r.Status.Phase), c.maxPods, c.draining, c.agentTypes, c.labels)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (db *DB) DeleteRunner(ctx context.Context, orgID, id string, fn func(*runners.Runner) error) (*runners.Runner, error) {
	var out *runners.Runner
	err := db.tx(ctx, func(tx *sql.Tx) error {
		r, err := db.updateRunner(ctx, tx, orgID, id, func(r *runners.Runner) error {
			if err := fn(r); err != nil {
				return err
			}
			if !r.Deleted() {
				return fmt.Errorf("runner %q: DeleteRunner's fn must set DeletedAt", id)
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Exchange tokens before access tokens: a redemption in flight
		// holds its exchange token's row, so on PostgreSQL the first
		// DELETE waits for it to commit, and the second then sees (and
		// deletes) the access token it issued. A deleted runner's daemon
		// must fail authentication on its next call.
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM exchange_tokens WHERE org_id = ? AND runner_id = ?`), orgID, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM tokens WHERE org_id = ? AND runner_id = ?`), orgID, id); err != nil {
			return err
		}
		// Without its capacity row placement knows the runner no more than
		// before tombstones existed: a pod that asks for it by numeric id
		// finds no such runner, and no placement query can return it.
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM runner_capacity WHERE runner_id = ?`), id); err != nil {
			return err
		}
		out = r
		return nil
	})
	db.viewChanged(orgID, id, true)
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("runner %q", id))
	}
	return out, nil
}

func (db *DB) PurgeDeletedRunners(ctx context.Context, cutoff time.Time) (int, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		// A tombstone has no exchange tokens (DeleteRunner deleted them,
		// and CreateExchangeToken refuses tombstones); this only keeps one
		// that slipped through from blocking every later purge on the
		// foreign key.
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM exchange_tokens WHERE runner_id IN
			(SELECT id FROM runners WHERE deleted_at > 0 AND deleted_at < ?)`), micros(cutoff)); err != nil {
			return err
		}
		// The environments of a deleted runner are removed when it is
		// deleted (environments.Service.RunnerDeleted); any left, because
		// that failed or the control plane stopped in between, go now, so
		// that nothing outlives its runner's tombstone.
		if err := db.deleteEnvironments(ctx, tx, `runner_id IN (SELECT id FROM runners WHERE deleted_at > 0 AND deleted_at < ?)`,
			micros(cutoff)); err != nil {
			return err
		}
		// Tombstones have no runner_capacity rows (DeleteRunner deleted
		// them); ON DELETE CASCADE would take any left.
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM runners WHERE deleted_at > 0 AND deleted_at < ?`), micros(cutoff))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if n > 0 || err != nil {
		// Tombstones GetRunner still showed: rare enough to forget all.
		db.viewCleared()
	}
	if err != nil {
		return 0, db.translate(err, "deleted runners")
	}
	return int(n), nil
}

func (db *DB) RenewRunners(ctx context.Context, batch []runners.Renewal) ([]runners.Renewal, error) {
	var inactive []runners.Renewal
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if db.dialect.Name == "postgres" {
			var err error
			if batch, inactive, err = renewAtOnce(ctx, tx, batch); err != nil {
				return err
			}
			return db.noticeRenewals(ctx, tx, batch)
		}
		stmt, err := tx.PrepareContext(ctx, db.q(`UPDATE runners SET last_seen = ?
			WHERE org_id = ? AND id = ? AND phase <> ? AND last_seen < ?`+live))
		if err != nil {
			return err
		}
		defer stmt.Close()
		inactive = inactive[:0]
		for _, r := range batch {
			at := micros(r.At)
			res, err := stmt.ExecContext(ctx, at, r.OrgID, r.RunnerID, string(runners.PhaseInactive), at)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				inactive = append(inactive, r)
			}
		}
		return db.noticeRenewals(ctx, tx, batch)
	})
	db.viewRenewed(batch)
	if err != nil {
		return nil, db.translate(err, "runner renewals")
	}
	// Rows left alone because they were already at least as recent are not
	// inactive; only a phase check tells, so look at the few that remain.
	out := inactive[:0]
	for _, r := range inactive {
		var phase string
		err := db.read.QueryRowContext(ctx, db.q(`SELECT phase FROM runners WHERE org_id = ? AND id = ?`), r.OrgID, r.RunnerID).Scan(&phase)
		if err == nil && phase == string(runners.PhaseInactive) {
			out = append(out, r)
		}
	}
	return out, nil
}

// renewAtOnce stores a batch of renewals on PostgreSQL in one statement and
// returns the batch with one renewal per runner (the latest) and those of
// it that changed no row. A statement per renewal held the row lock of
// every runner renewed so far over a round trip per runner of the rest:
// at 10,000 runners (bench/pods) a batch of 2,605 renewals outlived the
// runner timeout, and the sweep took live runners for silent ones; the
// writes that lock a runner's row (its reports; pod claims, until they
// took a lock of their own) waited behind it.
func renewAtOnce(ctx context.Context, tx *sql.Tx, batch []runners.Renewal) (merged, unchanged []runners.Renewal, err error) {
	type key struct{ org, id string }
	at := make(map[key]int, len(batch))
	for _, r := range batch {
		k := key{r.OrgID, r.RunnerID}
		if i, ok := at[k]; ok {
			if r.At.After(merged[i].At) {
				merged[i].At = r.At
			}
			continue
		}
		at[k] = len(merged)
		merged = append(merged, r)
	}
	orgs, ids, times := make([]string, len(merged)), make([]string, len(merged)), make([]int64, len(merged))
	for i, r := range merged {
		orgs[i], ids[i], times[i] = r.OrgID, r.RunnerID, micros(r.At)
	}
	rows, err := tx.QueryContext(ctx, `UPDATE runners r SET last_seen = v.at
		FROM unnest($1::text[], $2::text[], $3::bigint[]) AS v(org_id, id, at)
		WHERE r.org_id = v.org_id AND r.id = v.id AND r.phase <> $4 AND r.last_seen < v.at AND r.deleted_at = 0
		RETURNING r.org_id, r.id`, orgs, ids, times, string(runners.PhaseInactive))
	if err != nil {
		return nil, nil, fmt.Errorf("renew runners: %w", err)
	}
	defer rows.Close()
	changed := make([]bool, len(merged))
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.org, &k.id); err != nil {
			return nil, nil, fmt.Errorf("renew runners: %w", err)
		}
		changed[at[k]] = true
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("renew runners: %w", err)
	}
	for i, r := range merged {
		if !changed[i] {
			unchanged = append(unchanged, r)
		}
	}
	return merged, unchanged, nil
}

func (db *DB) FindSilentRunners(ctx context.Context, cutoff time.Time) ([]runners.Renewal, error) {
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT org_id, id, last_seen FROM runners
		WHERE phase IN (?, ?) AND last_seen > 0 AND last_seen < ? ORDER BY seq`),
		string(runners.PhaseActive), string(runners.PhaseDegraded), micros(cutoff))
	if err != nil {
		return nil, db.translate(err, "runners")
	}
	defer rows.Close()
	var out []runners.Renewal
	for rows.Next() {
		var r runners.Renewal
		var at int64
		if err := rows.Scan(&r.OrgID, &r.RunnerID, &at); err != nil {
			return nil, db.translate(err, "runners")
		}
		r.At = fromMicros(at)
		out = append(out, r)
	}
	return out, db.translate(rows.Err(), "runners")
}

// The phase in these two queries is a literal, so that they match the
// predicate of the partial index runners_unreachable (migration 00017).

func (db *DB) FindLostRunners(ctx context.Context, cutoff time.Time) ([]runners.Renewal, error) {
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT org_id, id, last_seen FROM runners
		WHERE phase = 'RUNNER_PHASE_INACTIVE' AND lost_at <= last_seen AND deleted_at = 0
		AND last_seen > 0 AND last_seen < ? ORDER BY last_seen`), micros(cutoff))
	if err != nil {
		return nil, db.translate(err, "runners")
	}
	defer rows.Close()
	var out []runners.Renewal
	for rows.Next() {
		var r runners.Renewal
		var at int64
		if err := rows.Scan(&r.OrgID, &r.RunnerID, &at); err != nil {
			return nil, db.translate(err, "runners")
		}
		r.At = fromMicros(at)
		out = append(out, r)
	}
	return out, db.translate(rows.Err(), "runners")
}

func (db *DB) MarkRunnerLost(ctx context.Context, orgID, id string, cutoff, at time.Time) (bool, error) {
	res, err := db.write.ExecContext(ctx, db.q(`UPDATE runners SET lost_at = ?
		WHERE org_id = ? AND id = ? AND phase = 'RUNNER_PHASE_INACTIVE' AND lost_at <= last_seen AND deleted_at = 0
		AND last_seen > 0 AND last_seen < ?`), micros(at), orgID, id, micros(cutoff))
	if err != nil {
		return false, db.translate(err, "runner")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, db.translate(err, "runner")
	}
	return n == 1, nil
}
