package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/runyard/runyard/internal/pods"
)

const podColumns = `seq, key, org_id, runner_id, status, agent_type_id, initial_prompt, labels, workdir, reason,
	exit_code, created_at, started_at, finished_at`

func scanPod(row interface{ Scan(...any) error }) (*pods.Pod, error) {
	var p pods.Pod
	var status, labels string
	var exit sql.NullInt64
	var created int64
	var started, finished sql.NullInt64
	if err := row.Scan(&p.Seq, &p.Key, &p.OrgID, &p.RunnerID, &status, &p.AgentTypeID, &p.InitialPrompt, &labels,
		&p.Workdir, &p.Reason, &exit, &created, &started, &finished); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(labels), &p.Labels); err != nil {
		return nil, fmt.Errorf("decode labels of pod %q: %w", p.Key, err)
	}
	p.Status = pods.Status(status)
	if exit.Valid {
		code := int(exit.Int64)
		p.ExitCode = &code
	}
	p.CreatedAt, p.StartedAt, p.FinishedAt = fromMicros(created), fromNullMicros(started), fromNullMicros(finished)
	return &p, nil
}

func (db *DB) CreatePod(ctx context.Context, p *pods.Pod) error {
	labels, err := json.Marshal(p.Labels)
	if err != nil {
		return fmt.Errorf("encode labels: %w", err)
	}
	var exit sql.NullInt64
	if p.ExitCode != nil {
		exit = sql.NullInt64{Int64: int64(*p.ExitCode), Valid: true}
	}
	err = db.write.QueryRowContext(ctx, db.q(`INSERT INTO pods (key, org_id, runner_id, status, agent_type_id,
		initial_prompt, labels, workdir, reason, exit_code, created_at, started_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
		p.Key, p.OrgID, p.RunnerID, string(p.Status), p.AgentTypeID, p.InitialPrompt, string(labels), p.Workdir,
		p.Reason, exit, micros(p.CreatedAt), nullMicros(p.StartedAt), nullMicros(p.FinishedAt)).Scan(&p.Seq)
	return db.translate(err, fmt.Sprintf("pod %q", p.Key))
}

func (db *DB) FindPods(ctx context.Context, f pods.Filter) ([]*pods.Pod, int, error) {
	where := ` WHERE org_id = ?`
	args := []any{f.OrgID}
	if f.RunnerID != "" {
		where += ` AND runner_id = ?`
		args = append(args, f.RunnerID)
	}
	if f.Status != "" {
		where += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	var total int
	if err := db.read.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM pods`+where), args...).Scan(&total); err != nil {
		return nil, 0, db.translate(err, "pods")
	}
	query := `SELECT ` + podColumns + ` FROM pods` + where + ` ORDER BY seq DESC`
	if f.Limit > 0 {
		query += fmt.Sprintf(` LIMIT %d OFFSET %d`, f.Limit, f.Offset)
	}
	rows, err := db.read.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, 0, db.translate(err, "pods")
	}
	defer rows.Close()
	var out []*pods.Pod
	for rows.Next() {
		p, err := scanPod(rows)
		if err != nil {
			return nil, 0, db.translate(err, "pods")
		}
		out = append(out, p)
	}
	return out, total, db.translate(rows.Err(), "pods")
}

func (db *DB) CountActivePods(ctx context.Context, orgID string) (map[string]int, error) {
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT runner_id, COUNT(*) FROM pods
		WHERE org_id = ? AND runner_id <> '' AND status IN (?, ?) GROUP BY runner_id`),
		orgID, string(pods.StatusPending), string(pods.StatusRunning))
	if err != nil {
		return nil, db.translate(err, "pods")
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, db.translate(err, "pods")
		}
		out[id] = n
	}
	return out, db.translate(rows.Err(), "pods")
}
