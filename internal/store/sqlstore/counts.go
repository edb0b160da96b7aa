package sqlstore

import (
	"context"
	"fmt"

	"github.com/runyard/runyard/internal/metrics"
)

// CountObjects counts environments, services, task executions and pods by
// phase across all organizations, for the control plane's /metrics. Pods
// waiting for a runner are counted by their pending reason, pods placed on
// a runner (pending there or running) once more as placed_pod.
func (db *DB) CountObjects(ctx context.Context) ([]metrics.Count, error) {
	// A service's phase is in its status document.
	servicePhase := "json_extract(status, '$.phase')"
	if db.dialect.Name == "postgres" {
		servicePhase = "(status::jsonb ->> 'phase')"
	}
	queries := []struct{ kind, query string }{
		{"environment", `SELECT phase, COUNT(*) FROM environments GROUP BY phase`},
		{"service", `SELECT COALESCE(` + servicePhase + `, ''), COUNT(*) FROM automation_services GROUP BY 1`},
		{"execution", `SELECT phase, COUNT(*) FROM task_executions GROUP BY phase`},
		{"pod", `SELECT status, COUNT(*) FROM pods GROUP BY status`},
		{"placed_pod", `SELECT '', COUNT(*) FROM pods WHERE runner_id <> '' AND status IN ('pending', 'running')`},
		{"pending_pod", `SELECT reason, COUNT(*) FROM pods WHERE runner_id = '' AND status = 'pending' GROUP BY reason`},
	}
	var out []metrics.Count
	for _, q := range queries {
		rows, err := db.read.QueryContext(ctx, db.q(q.query))
		if err != nil {
			return nil, fmt.Errorf("count %ss: %w", q.kind, err)
		}
		for rows.Next() {
			c := metrics.Count{Kind: q.kind}
			if err := rows.Scan(&c.Phase, &c.N); err != nil {
				rows.Close()
				return nil, fmt.Errorf("count %ss: %w", q.kind, err)
			}
			out = append(out, c)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("count %ss: %w", q.kind, err)
		}
	}
	return out, nil
}
