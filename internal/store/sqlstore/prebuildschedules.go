package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/prebuilds"
)

const scheduleColumns = `id, org_id, context_url, class_id, interval_seconds, next_run_at, last_prebuild_id, creator_id, creator_principal, created_at`

func scanSchedule(row interface{ Scan(...any) error }) (*prebuilds.Schedule, error) {
	var s prebuilds.Schedule
	var secs, next, created int64
	var principal string
	if err := row.Scan(&s.ID, &s.OrgID, &s.ContextURL, &s.ClassID, &secs, &next, &s.LastPrebuildID, &s.Creator.ID, &principal, &created); err != nil {
		return nil, err
	}
	s.Interval, s.NextRunAt, s.CreatedAt = time.Duration(secs)*time.Second, fromMicros(next), fromMicros(created)
	s.Creator.Principal = identity.Principal(principal)
	return &s, nil
}

func (db *DB) CreatePrebuildSchedule(ctx context.Context, s *prebuilds.Schedule) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO prebuild_schedules (`+scheduleColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			s.ID, s.OrgID, s.ContextURL, s.ClassID, int64(s.Interval/time.Second), micros(s.NextRunAt), s.LastPrebuildID,
			s.Creator.ID, string(s.Creator.Principal), micros(s.CreatedAt))
		return err
	})
	return db.translate(err, fmt.Sprintf("prebuild schedule %q", s.ID))
}

func (db *DB) querySchedules(ctx context.Context, query string, args ...any) ([]*prebuilds.Schedule, error) {
	rows, err := db.read.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, db.translate(err, "prebuild schedules")
	}
	defer rows.Close()
	out := []*prebuilds.Schedule{}
	for rows.Next() {
		s, err := scanSchedule(rows)
		if err != nil {
			return nil, db.translate(err, "prebuild schedules")
		}
		out = append(out, s)
	}
	return out, db.translate(rows.Err(), "prebuild schedules")
}

func (db *DB) FindPrebuildSchedules(ctx context.Context, orgID string) ([]*prebuilds.Schedule, error) {
	return db.querySchedules(ctx, `SELECT `+scheduleColumns+` FROM prebuild_schedules WHERE org_id = ? ORDER BY created_at, id`, orgID)
}

func (db *DB) FindDueSchedules(ctx context.Context, now time.Time, limit int) ([]*prebuilds.Schedule, error) {
	return db.querySchedules(ctx, `SELECT `+scheduleColumns+` FROM prebuild_schedules WHERE next_run_at <= ? ORDER BY next_run_at LIMIT `+fmt.Sprint(limit), micros(now))
}

func (db *DB) DeletePrebuildSchedule(ctx context.Context, orgID, id string) error {
	return db.deleteOrgRow(ctx, "prebuild_schedules", orgID, id, fmt.Sprintf("prebuild schedule %q", id))
}

func (db *DB) ClaimSchedule(ctx context.Context, id string, due, next time.Time) (bool, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE prebuild_schedules SET next_run_at = ? WHERE id = ? AND next_run_at = ?`),
			micros(next), id, micros(due))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n == 1, db.translate(err, fmt.Sprintf("prebuild schedule %q", id))
}

func (db *DB) SetScheduleLastPrebuild(ctx context.Context, id, prebuildID string) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`UPDATE prebuild_schedules SET last_prebuild_id = ? WHERE id = ?`), prebuildID, id)
		return err
	})
	return db.translate(err, fmt.Sprintf("prebuild schedule %q", id))
}

func (db *DB) FindPrebuildsUnderWay(ctx context.Context, limit int) ([]*prebuilds.Prebuild, error) {
	return db.queryPrebuilds(ctx, `SELECT `+prebuildColumns+` FROM prebuilds WHERE phase IN (?, ?, ?) ORDER BY seq LIMIT `+fmt.Sprint(limit),
		string(prebuilds.PhasePending), string(prebuilds.PhaseStarting), string(prebuilds.PhaseRunning))
}
