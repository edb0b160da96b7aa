package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/prebuilds"
)

const prebuildColumns = `seq, id, org_id, runner_id, context_url, environment_id, phase, creator_id, creator_principal,
	triggered_by, doc, created_at, updated_at`

// prebuildDoc is the part of a prebuild no query filters on.
type prebuildDoc struct {
	ClassID        string              `json:"classId"`
	Timeout        time.Duration       `json:"timeout"`
	FailureMessage string              `json:"failureMessage,omitempty"`
	CompletedAt    *time.Time          `json:"completedAt,omitempty"`
	Snapshot       *prebuilds.Snapshot `json:"snapshot,omitempty"`
}

func scanPrebuild(row interface{ Scan(...any) error }) (*prebuilds.Prebuild, error) {
	var p prebuilds.Prebuild
	var phase, principal, trigger, doc string
	var created, updated int64
	if err := row.Scan(&p.Seq, &p.ID, &p.OrgID, &p.RunnerID, &p.ContextURL, &p.EnvironmentID, &phase, &p.Creator.ID, &principal,
		&trigger, &doc, &created, &updated); err != nil {
		return nil, err
	}
	var d prebuildDoc
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return nil, fmt.Errorf("prebuild %s: %w", p.ID, err)
	}
	p.Phase, p.Creator.Principal, p.TriggeredBy = prebuilds.Phase(phase), identity.Principal(principal), prebuilds.Trigger(trigger)
	p.ClassID, p.Timeout, p.FailureMessage, p.CompletedAt, p.Snapshot = d.ClassID, d.Timeout, d.FailureMessage, d.CompletedAt, d.Snapshot
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &p, nil
}

func prebuildDocOf(p *prebuilds.Prebuild) (string, error) {
	b, err := json.Marshal(prebuildDoc{ClassID: p.ClassID, Timeout: p.Timeout, FailureMessage: p.FailureMessage, CompletedAt: p.CompletedAt, Snapshot: p.Snapshot})
	return string(b), err
}

func (db *DB) CreatePrebuild(ctx context.Context, p *prebuilds.Prebuild) error {
	audit.SetObject(ctx, "RESOURCE_TYPE_PREBUILD", p.ID)
	doc, err := prebuildDocOf(p)
	if err != nil {
		return err
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, db.q(`INSERT INTO prebuilds (id, org_id, runner_id, context_url, environment_id, phase,
			creator_id, creator_principal, triggered_by, doc, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
			p.ID, p.OrgID, p.RunnerID, p.ContextURL, p.EnvironmentID, string(p.Phase), p.Creator.ID, string(p.Creator.Principal),
			string(p.TriggeredBy), doc, micros(p.CreatedAt), micros(p.UpdatedAt)).Scan(&p.Seq)
	})
	return db.translate(err, fmt.Sprintf("prebuild %q", p.ID))
}

func (db *DB) FindPrebuildByID(ctx context.Context, orgID, id string) (*prebuilds.Prebuild, error) {
	p, err := scanPrebuild(db.read.QueryRowContext(ctx, db.q(`SELECT `+prebuildColumns+` FROM prebuilds WHERE org_id = ? AND id = ?`), orgID, id))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("prebuild %q", id))
	}
	return p, nil
}

func (db *DB) FindPrebuildByEnvironment(ctx context.Context, orgID, envID string) (*prebuilds.Prebuild, error) {
	p, err := scanPrebuild(db.read.QueryRowContext(ctx, db.q(`SELECT `+prebuildColumns+` FROM prebuilds
		WHERE org_id = ? AND environment_id = ? ORDER BY seq DESC LIMIT 1`), orgID, envID))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("prebuild of environment %q", envID))
	}
	return p, nil
}

func (db *DB) FindPrebuilds(ctx context.Context, f prebuilds.Filter) ([]*prebuilds.Prebuild, error) {
	query := `SELECT ` + prebuildColumns + ` FROM prebuilds WHERE org_id = ?`
	args := []any{f.OrgID}
	if f.Before > 0 {
		query += ` AND seq < ?`
		args = append(args, f.Before)
	}
	query, args = appendIn(query, args, "runner_id", f.RunnerIDs)
	query, args = appendIn(query, args, "phase", f.Phases)
	query, args = appendIn(query, args, "context_url", f.ContextURLs)
	query, args = appendIn(query, args, "creator_id", f.CreatorIDs)
	query, args = appendIn(query, args, "triggered_by", f.Triggers)
	query += ` ORDER BY seq DESC`
	if f.Limit > 0 {
		query += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	return db.queryPrebuilds(ctx, query, args...)
}

func (db *DB) FindKeptSnapshots(ctx context.Context, runnerID string) ([]*prebuilds.Prebuild, error) {
	all, err := db.queryPrebuilds(ctx, `SELECT `+prebuildColumns+` FROM prebuilds WHERE runner_id = ? ORDER BY seq`, runnerID)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, p := range all {
		if p.Kept() {
			out = append(out, p)
		}
	}
	return out, nil
}

func (db *DB) queryPrebuilds(ctx context.Context, query string, args ...any) ([]*prebuilds.Prebuild, error) {
	rows, err := db.read.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, db.translate(err, "prebuilds")
	}
	defer rows.Close()
	out := []*prebuilds.Prebuild{}
	for rows.Next() {
		p, err := scanPrebuild(rows)
		if err != nil {
			return nil, db.translate(err, "prebuilds")
		}
		out = append(out, p)
	}
	return out, db.translate(rows.Err(), "prebuilds")
}

func (db *DB) UpdatePrebuild(ctx context.Context, orgID, id string, fn func(*prebuilds.Prebuild) error) (*prebuilds.Prebuild, error) {
	var out *prebuilds.Prebuild
	err := db.tx(ctx, func(tx *sql.Tx) error {
		p, err := scanPrebuild(tx.QueryRowContext(ctx,
			db.q(`SELECT `+prebuildColumns+` FROM prebuilds WHERE org_id = ? AND id = ?`+db.dialect.LockRow), orgID, id))
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
		doc, err := prebuildDocOf(p)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE prebuilds SET runner_id = ?, environment_id = ?, phase = ?, doc = ?, updated_at = ?
			WHERE org_id = ? AND id = ?`),
			p.RunnerID, p.EnvironmentID, string(p.Phase), doc, micros(p.UpdatedAt), orgID, id); err != nil {
			return err
		}
		out = p
		return nil
	})
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("prebuild %q", id))
	}
	return out, nil
}

func (db *DB) DeletePrebuild(ctx context.Context, orgID, id string) error {
	return db.deleteOrgRow(ctx, "prebuilds", orgID, id, fmt.Sprintf("prebuild %q", id))
}
