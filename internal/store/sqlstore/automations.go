package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/runyard/runyard/internal/audit"

	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/automations/spec"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
)

// An environment's services, tasks and task executions. Every change of an
// environment's services and tasks as a set goes through EditAutomations,
// which locks the environment row first (lockEnvironment), so the domain's
// checks across the set (references, dependencies, cycles) see every
// committed change. Single services and executions are updated under their
// own row lock.

// rowScanner is what scan functions read from: *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(...any) error }

// querier runs queries: the read pool or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// scanAll runs query (already in the dialect's form) and scans every row.
func scanAll[T any](ctx context.Context, q querier, query string, args []any, scan func(rowScanner) (T, error)) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		x, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// encodeJSON encodes v for a JSON column.
func encodeJSON(what string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", what, err)
	}
	return string(b), nil
}

// encodeList encodes a list column; nil and empty are both [].
func encodeList[T any](what string, v []T) (string, error) {
	if len(v) == 0 {
		return "[]", nil
	}
	return encodeJSON(what, v)
}

// decodeList decodes a list column; an empty list reads as nil, as the
// domain builds them, so that what it compares equals what it reads.
func decodeList[T any](what, doc string) ([]T, error) {
	var v []T
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", what, err)
	}
	if len(v) == 0 {
		return nil, nil
	}
	return v, nil
}

// Services.

const serviceColumns = `seq, id, org_id, environment_id, reference, name, description, role, triggered_by,
	spec, status, creator_id, creator_principal, created_at, updated_at, source`

func scanService(r rowScanner) (*automations.Service, error) {
	var s automations.Service
	var role, triggers, specDoc, status, creatorPrincipal, source string
	var created, updated int64
	if err := r.Scan(&s.Seq, &s.ID, &s.OrgID, &s.EnvironmentID, &s.Reference, &s.Name, &s.Description, &role, &triggers,
		&specDoc, &status, &s.Creator.ID, &creatorPrincipal, &created, &updated, &source); err != nil {
		return nil, err
	}
	var err error
	if s.TriggeredBy, err = decodeList[spec.Trigger](fmt.Sprintf("triggers of service %q", s.ID), triggers); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(specDoc), &s.Spec); err != nil {
		return nil, fmt.Errorf("decode spec of service %q: %w", s.ID, err)
	}
	if err := json.Unmarshal([]byte(status), &s.Status); err != nil {
		return nil, fmt.Errorf("decode status of service %q: %w", s.ID, err)
	}
	s.Role = automations.ServiceRole(role)
	s.Source = automations.Source(source)
	s.Creator.Principal = identity.Principal(creatorPrincipal)
	s.CreatedAt, s.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &s, nil
}

func serviceDocs(s *automations.Service) (triggers, specDoc, status string, err error) {
	if triggers, err = encodeList("triggers", s.TriggeredBy); err != nil {
		return "", "", "", err
	}
	if specDoc, err = encodeJSON("spec", s.Spec); err != nil {
		return "", "", "", err
	}
	if status, err = encodeJSON("status", s.Status); err != nil {
		return "", "", "", err
	}
	return triggers, specDoc, status, nil
}

func (db *DB) insertService(ctx context.Context, tx *sql.Tx, s *automations.Service) error {
	audit.SetObject(ctx, "RESOURCE_TYPE_SERVICE", s.ID)
	triggers, specDoc, status, err := serviceDocs(s)
	if err != nil {
		return err
	}
	err = tx.QueryRowContext(ctx, db.q(`INSERT INTO automation_services (id, org_id, environment_id, reference, name,
		description, role, triggered_by, spec, status, creator_id, creator_principal, created_at, updated_at, source)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
		s.ID, s.OrgID, s.EnvironmentID, s.Reference, s.Name, s.Description, string(s.Role), triggers, specDoc, status,
		s.Creator.ID, string(s.Creator.Principal), micros(s.CreatedAt), micros(s.UpdatedAt), string(s.Source)).Scan(&s.Seq)
	return db.translate(err, fmt.Sprintf("service %q (reference %q) of environment %q", s.ID, s.Reference, s.EnvironmentID))
}

// writeService stores the mutable fields of s, a service of environment
// envID of orgID.
func (db *DB) writeService(ctx context.Context, tx *sql.Tx, s *automations.Service, orgID, envID string) error {
	triggers, specDoc, status, err := serviceDocs(s)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("service %q (reference %q) of environment %q", s.ID, s.Reference, envID)
	res, err := tx.ExecContext(ctx, db.q(`UPDATE automation_services SET reference = ?, name = ?, description = ?,
		role = ?, triggered_by = ?, spec = ?, status = ?, updated_at = ?, source = ? WHERE org_id = ? AND environment_id = ? AND id = ?`),
		s.Reference, s.Name, s.Description, string(s.Role), triggers, specDoc, status, micros(s.UpdatedAt), string(s.Source), orgID, envID, s.ID)
	if err != nil {
		return db.translate(err, what)
	}
	return db.oneRow(res, what)
}

// oneRow turns an UPDATE or DELETE that touched no row into CodeNotFound.
func (db *DB) oneRow(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return db.translate(err, what)
	}
	if n == 0 {
		return db.translate(sql.ErrNoRows, what)
	}
	return nil
}

func (db *DB) FindServiceByID(ctx context.Context, orgID, id string) (*automations.Service, error) {
	s, err := scanService(db.readRow(ctx, `SELECT `+serviceColumns+` FROM automation_services WHERE org_id = ? AND id = ?`, orgID, id))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("service %q", id))
	}
	return s, nil
}

// appendPage adds the keyset page: seq after After, ascending, at most
// Limit rows (no limit when zero).
func appendPage(query string, args []any, after int64, limit int) (string, []any) {
	if after > 0 {
		query += ` AND seq > ?`
		args = append(args, after)
	}
	query += ` ORDER BY seq`
	if limit > 0 {
		query += fmt.Sprintf(` LIMIT %d`, limit)
	}
	return query, args
}

// appendRunner adds the condition that selects the rows of the
// environments on runnerID, when set.
func appendRunner(query string, args []any, orgID, runnerID string) (string, []any) {
	if runnerID == "" {
		return query, args
	}
	return query + ` AND environment_id IN (SELECT id FROM environments WHERE org_id = ? AND runner_id = ?)`,
		append(args, orgID, runnerID)
}

func (db *DB) FindServices(ctx context.Context, f automations.ServiceFilter) ([]*automations.Service, error) {
	query := `SELECT ` + serviceColumns + ` FROM automation_services WHERE org_id = ?`
	args := []any{f.OrgID}
	query, args = appendIn(query, args, "environment_id", f.EnvironmentIDs)
	query, args = appendIn(query, args, "reference", f.References)
	query, args = appendIn(query, args, "id", f.IDs)
	query, args = appendIn(query, args, "role", f.Roles)
	query, args = appendRunner(query, args, f.OrgID, f.RunnerID)
	query, args = appendPage(query, args, f.After, f.Limit)
	out, err := scanAll(ctx, db.read, db.q(query), args, scanService)
	if err != nil {
		return nil, db.translate(err, "services")
	}
	return out, nil
}

func (db *DB) UpdateService(ctx context.Context, orgID, id string, fn func(*automations.Service) error) (*automations.Service, error) {
	var out *automations.Service
	var fnErr error
	err := db.tx(ctx, func(tx *sql.Tx) error {
		s, err := scanService(tx.QueryRowContext(ctx,
			db.q(`SELECT `+serviceColumns+` FROM automation_services WHERE org_id = ? AND id = ?`+db.dialect.LockRow), orgID, id))
		if err != nil {
			return db.translate(err, fmt.Sprintf("service %q", id))
		}
		envID := s.EnvironmentID
		if fnErr = fn(s); fnErr != nil {
			return fnErr
		}
		if err := db.writeService(ctx, tx, s, orgID, envID); err != nil {
			return err
		}
		out = s
		return nil
	})
	if fnErr != nil {
		return nil, fnErr
	}
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("service %q", id))
	}
	return out, nil
}

// Tasks.

const taskColumns = `seq, id, org_id, environment_id, reference, name, description, triggered_by, depends_on,
	spec, creator_id, creator_principal, created_at, updated_at, source`

func scanTask(r rowScanner) (*automations.Task, error) {
	var t automations.Task
	var triggers, dependsOn, specDoc, creatorPrincipal, source string
	var created, updated int64
	if err := r.Scan(&t.Seq, &t.ID, &t.OrgID, &t.EnvironmentID, &t.Reference, &t.Name, &t.Description, &triggers, &dependsOn,
		&specDoc, &t.Creator.ID, &creatorPrincipal, &created, &updated, &source); err != nil {
		return nil, err
	}
	var err error
	if t.TriggeredBy, err = decodeList[spec.Trigger](fmt.Sprintf("triggers of task %q", t.ID), triggers); err != nil {
		return nil, err
	}
	if t.DependsOn, err = decodeList[string](fmt.Sprintf("dependencies of task %q", t.ID), dependsOn); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(specDoc), &t.Spec); err != nil {
		return nil, fmt.Errorf("decode spec of task %q: %w", t.ID, err)
	}
	t.Creator.Principal = identity.Principal(creatorPrincipal)
	t.Source = automations.Source(source)
	t.CreatedAt, t.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &t, nil
}

func taskDocs(t *automations.Task) (triggers, dependsOn, specDoc string, err error) {
	if triggers, err = encodeList("triggers", t.TriggeredBy); err != nil {
		return "", "", "", err
	}
	if dependsOn, err = encodeList("dependencies", t.DependsOn); err != nil {
		return "", "", "", err
	}
	if specDoc, err = encodeJSON("spec", t.Spec); err != nil {
		return "", "", "", err
	}
	return triggers, dependsOn, specDoc, nil
}

func (db *DB) insertTask(ctx context.Context, tx *sql.Tx, t *automations.Task) error {
	audit.SetObject(ctx, "RESOURCE_TYPE_TASK", t.ID)
	triggers, dependsOn, specDoc, err := taskDocs(t)
	if err != nil {
		return err
	}
	err = tx.QueryRowContext(ctx, db.q(`INSERT INTO automation_tasks (id, org_id, environment_id, reference, name,
		description, triggered_by, depends_on, spec, creator_id, creator_principal, created_at, updated_at, source)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
		t.ID, t.OrgID, t.EnvironmentID, t.Reference, t.Name, t.Description, triggers, dependsOn, specDoc,
		t.Creator.ID, string(t.Creator.Principal), micros(t.CreatedAt), micros(t.UpdatedAt), string(t.Source)).Scan(&t.Seq)
	return db.translate(err, fmt.Sprintf("task %q (reference %q) of environment %q", t.ID, t.Reference, t.EnvironmentID))
}

// writeTask stores the mutable fields of t, a task of environment envID of
// orgID.
func (db *DB) writeTask(ctx context.Context, tx *sql.Tx, t *automations.Task, orgID, envID string) error {
	triggers, dependsOn, specDoc, err := taskDocs(t)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("task %q (reference %q) of environment %q", t.ID, t.Reference, envID)
	res, err := tx.ExecContext(ctx, db.q(`UPDATE automation_tasks SET reference = ?, name = ?, description = ?,
		triggered_by = ?, depends_on = ?, spec = ?, updated_at = ?, source = ? WHERE org_id = ? AND id = ? AND environment_id = ?`),
		t.Reference, t.Name, t.Description, triggers, dependsOn, specDoc, micros(t.UpdatedAt), string(t.Source), orgID, t.ID, envID)
	if err != nil {
		return db.translate(err, what)
	}
	return db.oneRow(res, what)
}

func (db *DB) FindTaskByID(ctx context.Context, orgID, id string) (*automations.Task, error) {
	t, err := scanTask(db.readRow(ctx, `SELECT `+taskColumns+` FROM automation_tasks WHERE org_id = ? AND id = ?`, orgID, id))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("task %q", id))
	}
	return t, nil
}

func (db *DB) FindTasks(ctx context.Context, f automations.TaskFilter) ([]*automations.Task, error) {
	query := `SELECT ` + taskColumns + ` FROM automation_tasks WHERE org_id = ?`
	args := []any{f.OrgID}
	query, args = appendIn(query, args, "environment_id", f.EnvironmentIDs)
	query, args = appendIn(query, args, "reference", f.References)
	query, args = appendIn(query, args, "id", f.IDs)
	query, args = appendPage(query, args, f.After, f.Limit)
	out, err := scanAll(ctx, db.read, db.q(query), args, scanTask)
	if err != nil {
		return nil, db.translate(err, "tasks")
	}
	return out, nil
}

// Task executions. An execution's row holds its spec (the plan) and a small
// status document; its steps' statuses are rows of task_execution_steps
// (migration 00027), one per step of the plan, so that a runner's report
// writes the steps it names and not a document of every step. Status
// documents from before that migration may still list steps: reads ignore
// them and the next write drops them.

const executionColumns = `seq, id, org_id, environment_id, task_id, task_reference, phase, started_by, spec, status,
	creator_id, creator_principal, created_at, started_at, completed_at`

// executionHeadColumns are executionColumns without the spec, for a report
// that must not pay for decoding the plan.
const executionHeadColumns = `seq, id, org_id, environment_id, task_id, task_reference, phase, started_by, status,
	creator_id, creator_principal, created_at, started_at, completed_at`

func scanExecution(r rowScanner) (*automations.TaskExecution, error) {
	return scanExecutionColumns(r, true)
}

func scanExecutionHead(r rowScanner) (*automations.TaskExecution, error) {
	return scanExecutionColumns(r, false)
}

func scanExecutionColumns(r rowScanner, withSpec bool) (*automations.TaskExecution, error) {
	var x automations.TaskExecution
	var phase, specDoc, status, creatorPrincipal string
	var created int64
	var started, completed sql.NullInt64
	dest := []any{&x.Seq, &x.ID, &x.OrgID, &x.EnvironmentID, &x.TaskID, &x.TaskReference, &phase, &x.StartedBy}
	if withSpec {
		dest = append(dest, &specDoc)
	}
	dest = append(dest, &status, &x.Creator.ID, &creatorPrincipal, &created, &started, &completed)
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	if withSpec {
		if err := json.Unmarshal([]byte(specDoc), &x.Spec); err != nil {
			return nil, fmt.Errorf("decode spec of task execution %q: %w", x.ID, err)
		}
	}
	var doc statusDoc
	if err := json.Unmarshal([]byte(status), &doc); err != nil {
		return nil, fmt.Errorf("decode status of task execution %q: %w", x.ID, err)
	}
	x.Status = automations.ExecutionStatus{StatusVersion: doc.StatusVersion, FailureMessage: doc.FailureMessage, LogURL: doc.LogURL}
	x.Status.Phase = automations.ExecutionPhase(phase)
	x.Creator.Principal = identity.Principal(creatorPrincipal)
	x.CreatedAt = fromMicros(created)
	x.StartedAt, x.CompletedAt = fromNullMicros(started), fromNullMicros(completed)
	return &x, nil
}

// statusDoc is an execution's status document: ExecutionStatus without its
// steps, which decoding an older document's skips.
type statusDoc struct {
	StatusVersion  uint64                     `json:"statusVersion,omitempty"`
	Phase          automations.ExecutionPhase `json:"phase"`
	FailureMessage string                     `json:"failureMessage,omitempty"`
	LogURL         string                     `json:"logUrl,omitempty"`
}

func encodeStatus(st automations.ExecutionStatus) (string, error) {
	return encodeJSON("status", statusDoc{StatusVersion: st.StatusVersion, Phase: st.Phase, FailureMessage: st.FailureMessage, LogURL: st.LogURL})
}

// stepRow is a row of task_execution_steps.
type stepRow struct {
	pos     int64
	version int64
	started bool // phase is not NULL
	status  automations.StepStatus
}

// rowVersion is a status version as the BIGINT columns keep it; the domain
// allows none above math.MaxInt64.
func rowVersion(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

func encodeOutput(out map[string]string) (sql.NullString, error) {
	if len(out) == 0 {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(out)
	if err != nil {
		return sql.NullString{}, fmt.Errorf("encode step output: %w", err)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

// insertSteps adds a row for every step of x's plan, in plan order, then for
// every status step the plan lacks, with the statuses x holds.
func (db *DB) insertSteps(ctx context.Context, tx *sql.Tx, x *automations.TaskExecution) error {
	byID := make(map[string]*automations.StepStatus, len(x.Status.Steps))
	for i := range x.Status.Steps {
		byID[x.Status.Steps[i].ID] = &x.Status.Steps[i]
	}
	type row struct {
		id string
		st *automations.StepStatus
	}
	var rows []row
	inPlan := map[string]bool{}
	for _, g := range x.Spec.Plan {
		for _, st := range g.Steps {
			if inPlan[st.ID] {
				continue
			}
			inPlan[st.ID] = true
			rows = append(rows, row{st.ID, byID[st.ID]})
		}
	}
	for i := range x.Status.Steps {
		if st := &x.Status.Steps[i]; !inPlan[st.ID] {
			inPlan[st.ID] = true
			rows = append(rows, row{st.ID, st})
		}
	}
	version := rowVersion(x.Status.StatusVersion)
	// Many rows per statement, few enough for SQLite's bound on
	// parameters.
	const perStatement = 500
	for first := 0; first < len(rows); first += perStatement {
		batch := rows[first:min(len(rows), first+perStatement)]
		query := `INSERT INTO task_execution_steps (execution_id, step_id, pos, status_version, phase, failure_message, output) VALUES ` +
			strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?), `, len(batch)), ", ")
		args := make([]any, 0, 7*len(batch))
		for i, r := range batch {
			var phase, out sql.NullString
			var msg string
			if r.st != nil {
				phase = sql.NullString{String: string(r.st.Phase), Valid: true}
				msg = r.st.FailureMessage
				var err error
				if out, err = encodeOutput(r.st.Output); err != nil {
					return err
				}
			}
			args = append(args, x.ID, r.id, int64(first+i+1), version, phase, msg, out)
		}
		if _, err := tx.ExecContext(ctx, db.q(query), args...); err != nil {
			return db.translate(err, fmt.Sprintf("steps of task execution %q", x.ID))
		}
	}
	return nil
}

// loadSteps returns the rows of the steps of the executions ids, by
// execution, in plan order; with startedOnly, only the steps that started.
func (db *DB) loadSteps(ctx context.Context, q querier, ids []string, startedOnly bool) (map[string][]stepRow, error) {
	out := map[string][]stepRow{}
	if len(ids) == 0 {
		return out, nil
	}
	query := `SELECT execution_id, step_id, pos, status_version, phase, failure_message, output FROM task_execution_steps WHERE execution_id IN ` + in(len(ids))
	if startedOnly {
		query += ` AND phase IS NOT NULL`
	}
	query += ` ORDER BY execution_id, pos`
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := q.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var xid string
		var r stepRow
		var phase, output sql.NullString
		if err := rows.Scan(&xid, &r.status.ID, &r.pos, &r.version, &phase, &r.status.FailureMessage, &output); err != nil {
			return nil, err
		}
		r.started = phase.Valid
		r.status.Phase = automations.ExecutionPhase(phase.String)
		if output.Valid {
			if err := json.Unmarshal([]byte(output.String), &r.status.Output); err != nil {
				return nil, fmt.Errorf("decode output of step %q of task execution %q: %w", r.status.ID, xid, err)
			}
		}
		out[xid] = append(out[xid], r)
	}
	return out, rows.Err()
}

// withSteps sets the steps that started of each of xs.
func (db *DB) withSteps(ctx context.Context, q querier, xs ...*automations.TaskExecution) error {
	// Bounded batches: SQLite's bound on parameters.
	for len(xs) > 0 {
		batch := xs[:min(len(xs), 500)]
		xs = xs[len(batch):]
		ids := make([]string, len(batch))
		for i, x := range batch {
			ids[i] = x.ID
		}
		steps, err := db.loadSteps(ctx, q, ids, true)
		if err != nil {
			return err
		}
		for _, x := range batch {
			rows := steps[x.ID]
			if len(rows) == 0 {
				continue
			}
			x.Status.Steps = make([]automations.StepStatus, len(rows))
			for i, r := range rows {
				x.Status.Steps[i] = r.status
			}
		}
	}
	return nil
}

func (db *DB) insertExecution(ctx context.Context, tx *sql.Tx, x *automations.TaskExecution) error {
	audit.SetObject(ctx, "RESOURCE_TYPE_TASK_EXECUTION", x.ID)
	specDoc, err := encodeJSON("spec", x.Spec)
	if err != nil {
		return err
	}
	status, err := encodeStatus(x.Status)
	if err != nil {
		return err
	}
	err = tx.QueryRowContext(ctx, db.q(`INSERT INTO task_executions (id, org_id, environment_id, task_id, task_reference,
		phase, started_by, spec, status, creator_id, creator_principal, created_at, started_at, completed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
		x.ID, x.OrgID, x.EnvironmentID, x.TaskID, x.TaskReference, string(x.Status.Phase), x.StartedBy, specDoc, status,
		x.Creator.ID, string(x.Creator.Principal), micros(x.CreatedAt), nullMicros(x.StartedAt), nullMicros(x.CompletedAt)).Scan(&x.Seq)
	if err != nil {
		return db.translate(err, fmt.Sprintf("task execution %q", x.ID))
	}
	return db.insertSteps(ctx, tx, x)
}

func (db *DB) FindTaskExecutionByID(ctx context.Context, orgID, id string) (*automations.TaskExecution, error) {
	x, err := scanExecution(db.readRow(ctx, `SELECT `+executionColumns+` FROM task_executions WHERE org_id = ? AND id = ?`, orgID, id))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("task execution %q", id))
	}
	// Read after the row: a report writes both in one transaction, so the
	// steps are at least as new as the execution's phase.
	if err := db.withSteps(ctx, db.read, x); err != nil {
		return nil, db.translate(err, fmt.Sprintf("task execution %q", id))
	}
	return x, nil
}

func (db *DB) FindTaskExecutions(ctx context.Context, f automations.ExecutionFilter) ([]*automations.TaskExecution, error) {
	query := `SELECT ` + executionColumns + ` FROM task_executions WHERE `
	var args []any
	if f.RunnerID != "" {
		// The runner's environments are all of the organization, and so
		// are their executions. Without a condition on org_id the planner
		// starts from those environments' executions (with
		// task_executions_unfinished for a desired state) instead of
		// walking every execution of the organization.
		query += `environment_id IN (SELECT id FROM environments WHERE org_id = ? AND runner_id = ?)`
		args = append(args, f.OrgID, f.RunnerID)
	} else {
		query += `org_id = ?`
		args = append(args, f.OrgID)
	}
	query, args = appendIn(query, args, "environment_id", f.EnvironmentIDs)
	query, args = appendIn(query, args, "task_id", f.TaskIDs)
	query, args = appendIn(query, args, "task_reference", f.TaskReferences)
	if unfinishedOnly(f.Phases) {
		query += ` AND ` + unfinishedPhases
	} else {
		query, args = appendIn(query, args, "phase", f.Phases)
	}
	query, args = appendPage(query, args, f.After, f.Limit)
	out, err := scanAll(ctx, db.read, db.q(query), args, scanExecution)
	if err != nil {
		return nil, db.translate(err, "task executions")
	}
	if err := db.withSteps(ctx, db.read, out...); err != nil {
		return nil, db.translate(err, "task executions")
	}
	return out, nil
}

// unfinishedPhases is the predicate of the task_executions_unfinished index
// (migration 00011), written as the index has it so that both databases'
// planners can use the index.
var unfinishedPhases = fmt.Sprintf(`phase IN ('%s', '%s')`, automations.ExecutionPhasePending, automations.ExecutionPhaseRunning)

// unfinishedOnly reports whether phases are exactly the unfinished ones, as
// a runner's desired state asks for them.
func unfinishedOnly(phases []automations.ExecutionPhase) bool {
	if len(phases) != 2 {
		return false
	}
	return slices.Contains(phases, automations.ExecutionPhasePending) && slices.Contains(phases, automations.ExecutionPhaseRunning)
}

// writeHead stores an execution's row but its spec.
func (db *DB) writeHead(ctx context.Context, tx *sql.Tx, x *automations.TaskExecution, specDoc *string) error {
	status, err := encodeStatus(x.Status)
	if err != nil {
		return err
	}
	query := `UPDATE task_executions SET phase = ?, status = ?, started_at = ?, completed_at = ?`
	args := []any{string(x.Status.Phase), status, nullMicros(x.StartedAt), nullMicros(x.CompletedAt)}
	if specDoc != nil {
		query += `, spec = ?`
		args = append(args, *specDoc)
	}
	_, err = tx.ExecContext(ctx, db.q(query+` WHERE org_id = ? AND id = ?`), append(args, x.OrgID, x.ID)...)
	return err
}

func (db *DB) UpdateTaskExecution(ctx context.Context, orgID, id string, fn func(*automations.TaskExecution) error) (*automations.TaskExecution, error) {
	var out *automations.TaskExecution
	var fnErr error
	err := db.tx(ctx, func(tx *sql.Tx) error {
		x, err := scanExecution(tx.QueryRowContext(ctx,
			db.q(`SELECT `+executionColumns+` FROM task_executions WHERE org_id = ? AND id = ?`+db.dialect.LockRow), orgID, id))
		if err != nil {
			return db.translate(err, fmt.Sprintf("task execution %q", id))
		}
		all, err := db.loadSteps(ctx, tx, []string{id}, false)
		if err != nil {
			return err
		}
		rows := all[id]
		for _, r := range rows {
			if r.started {
				x.Status.Steps = append(x.Status.Steps, r.status)
			}
		}
		if fnErr = fn(x); fnErr != nil {
			return fnErr
		}
		specDoc, err := encodeJSON("spec", x.Spec)
		if err != nil {
			return err
		}
		if err := db.writeHead(ctx, tx, x, &specDoc); err != nil {
			return err
		}
		if err := db.replaceSteps(ctx, tx, x, rows); err != nil {
			return err
		}
		out = x
		return nil
	})
	if fnErr != nil {
		return nil, fnErr
	}
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("task execution %q", id))
	}
	return out, nil
}

// replaceSteps makes x's step rows, rows as loaded, say what x.Status.Steps
// says: changed steps are written, new ones added after the others, and
// started steps x lacks become not started.
func (db *DB) replaceSteps(ctx context.Context, tx *sql.Tx, x *automations.TaskExecution, rows []stepRow) error {
	version := rowVersion(x.Status.StatusVersion)
	byID := make(map[string]*stepRow, len(rows))
	next := int64(0)
	for i := range rows {
		byID[rows[i].status.ID] = &rows[i]
		next = max(next, rows[i].pos)
	}
	listed := map[string]bool{}
	for _, st := range x.Status.Steps {
		listed[st.ID] = true
		r := byID[st.ID]
		if r != nil && r.started && stepEqual(r.status, st) {
			continue
		}
		out, err := encodeOutput(st.Output)
		if err != nil {
			return err
		}
		if r == nil {
			next++
			_, err = tx.ExecContext(ctx, db.q(`INSERT INTO task_execution_steps (execution_id, step_id, pos, status_version, phase,
				failure_message, output) VALUES (?, ?, ?, ?, ?, ?, ?)`), x.ID, st.ID, next, version, string(st.Phase), st.FailureMessage, out)
		} else {
			_, err = tx.ExecContext(ctx, db.q(`UPDATE task_execution_steps SET status_version = ?, phase = ?, failure_message = ?, output = ?
				WHERE execution_id = ? AND step_id = ?`), version, string(st.Phase), st.FailureMessage, out, x.ID, st.ID)
		}
		if err != nil {
			return err
		}
	}
	for _, r := range rows {
		if r.started && !listed[r.status.ID] {
			_, err := tx.ExecContext(ctx, db.q(`UPDATE task_execution_steps SET status_version = ?, phase = NULL, failure_message = '', output = NULL
				WHERE execution_id = ? AND step_id = ?`), version, x.ID, r.status.ID)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func stepEqual(a, b automations.StepStatus) bool {
	return a.ID == b.ID && a.Phase == b.Phase && a.FailureMessage == b.FailureMessage && maps.Equal(a.Output, b.Output)
}

func (db *DB) ReportTaskExecution(ctx context.Context, orgID, runnerID, id string, r automations.StepsReport, fn func(*automations.TaskExecution) (bool, error)) error {
	var fnErr error
	version := rowVersion(r.Version)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		// The execution's row is locked first: reports on one execution
		// take their turns.
		x, err := scanExecutionHead(tx.QueryRowContext(ctx, db.q(`SELECT `+executionHeadColumns+` FROM task_executions
			WHERE org_id = ? AND id = ? AND environment_id IN (SELECT id FROM environments WHERE org_id = ? AND runner_id = ?)`+db.dialect.LockRow),
			orgID, id, orgID, runnerID))
		if err != nil {
			return db.translate(err, fmt.Sprintf("task execution %q", id))
		}
		write, err := fn(x)
		if err != nil {
			fnErr = err
			return err
		}
		if write {
			if err := db.writeHead(ctx, tx, x, nil); err != nil {
				return err
			}
		}
		for i, st := range r.Steps {
			out, err := encodeOutput(st.Output)
			if err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, db.q(`UPDATE task_execution_steps SET status_version = ?, phase = ?, failure_message = ?, output = ?
				WHERE execution_id = ? AND step_id = ? AND status_version < ?`), version, string(st.Phase), st.FailureMessage, out, id, st.ID, version)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n > 0 {
				if err != nil {
					return err
				}
				continue
			}
			// Not written: a step that holds a newer report, or none of
			// this execution's.
			var one int
			err = tx.QueryRowContext(ctx, db.q(`SELECT 1 FROM task_execution_steps WHERE execution_id = ? AND step_id = ?`), id, st.ID).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				fnErr = &automations.UnknownStepError{Index: i, ID: st.ID}
				return fnErr
			}
			if err != nil {
				return err
			}
		}
		if r.Replace {
			query := `UPDATE task_execution_steps SET status_version = ?, phase = NULL, failure_message = '', output = NULL
				WHERE execution_id = ? AND phase IS NOT NULL AND status_version < ?`
			args := []any{version, id, version}
			if len(r.Steps) > 0 {
				query += ` AND step_id NOT IN ` + in(len(r.Steps))
				for _, st := range r.Steps {
					args = append(args, st.ID)
				}
			}
			if _, err := tx.ExecContext(ctx, db.q(query), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return db.translate(err, fmt.Sprintf("task execution %q", id))
	}
	return nil
}

// The set.

func (db *DB) EditAutomations(ctx context.Context, orgID, envID string, fn func(*environments.Environment, *automations.Set) (*automations.Changes, error)) error {
	var fnErr error
	err := db.tx(ctx, func(tx *sql.Tx) error {
		env, err := db.lockEnvironment(ctx, tx, orgID, envID)
		if err != nil {
			return db.translate(err, fmt.Sprintf("environment %q", envID))
		}
		set, err := db.loadSet(ctx, tx, orgID, envID)
		if err != nil {
			return err
		}
		ch, err := fn(env, set)
		if err != nil {
			fnErr = err
			return err
		}
		if ch == nil {
			return nil
		}
		return db.writeChanges(ctx, tx, env, ch)
	})
	if fnErr != nil {
		return fnErr
	}
	return db.translate(err, fmt.Sprintf("automations of environment %q", envID))
}

// loadSet reads an environment's services and tasks in tx, locking their
// rows (PostgreSQL) so that UpdateService cannot change a service between
// this read and the write of the changes.
func (db *DB) loadSet(ctx context.Context, tx *sql.Tx, orgID, envID string) (*automations.Set, error) {
	set := &automations.Set{}
	var err error
	set.Services, err = scanAll(ctx, tx, db.q(`SELECT `+serviceColumns+` FROM automation_services
		WHERE org_id = ? AND environment_id = ? ORDER BY seq`+db.dialect.LockRow), []any{orgID, envID}, scanService)
	if err != nil {
		return nil, fmt.Errorf("load services: %w", err)
	}
	set.Tasks, err = scanAll(ctx, tx, db.q(`SELECT `+taskColumns+` FROM automation_tasks
		WHERE org_id = ? AND environment_id = ? ORDER BY seq`+db.dialect.LockRow), []any{orgID, envID}, scanTask)
	if err != nil {
		return nil, fmt.Errorf("load tasks: %w", err)
	}
	return set, nil
}

// writeChanges writes ch to environment env, locked in tx. Removals go
// first, so a change may remove an item and create another with its
// reference. Every item must belong to the environment: one of another is
// refused (internal), and an update or removal of a missing one is
// CodeNotFound.
func (db *DB) writeChanges(ctx context.Context, tx *sql.Tx, env *environments.Environment, ch *automations.Changes) error {
	orgID, envID := env.OrgID, env.ID
	if ch.EnvironmentFile != nil {
		next := *env
		next.Spec.AutomationsFile = *ch.EnvironmentFile
		specDoc, _, err := environmentDocs(&next)
		if err != nil {
			return err
		}
		what := fmt.Sprintf("environment %q", envID)
		res, err := tx.ExecContext(ctx, db.q(`UPDATE environments SET spec = ? WHERE org_id = ? AND id = ?`), specDoc, orgID, envID)
		if err != nil {
			return db.translate(err, what)
		}
		if err := db.oneRow(res, what); err != nil {
			return err
		}
	}
	for _, id := range ch.DeleteTasks {
		if err := db.deleteItem(ctx, tx, "automation_tasks", orgID, envID, id, fmt.Sprintf("task %q", id)); err != nil {
			return err
		}
	}
	for _, id := range ch.DeleteServices {
		if err := db.deleteItem(ctx, tx, "automation_services", orgID, envID, id, fmt.Sprintf("service %q", id)); err != nil {
			return err
		}
	}
	for _, s := range ch.UpdateServices {
		if err := db.writeService(ctx, tx, s, orgID, envID); err != nil {
			return err
		}
	}
	for _, t := range ch.UpdateTasks {
		if err := db.writeTask(ctx, tx, t, orgID, envID); err != nil {
			return err
		}
	}
	for _, s := range ch.CreateServices {
		if err := belongs("service", s.ID, s.OrgID, s.EnvironmentID, orgID, envID); err != nil {
			return err
		}
		if err := db.insertService(ctx, tx, s); err != nil {
			return err
		}
	}
	for _, t := range ch.CreateTasks {
		if err := belongs("task", t.ID, t.OrgID, t.EnvironmentID, orgID, envID); err != nil {
			return err
		}
		if err := db.insertTask(ctx, tx, t); err != nil {
			return err
		}
	}
	for _, x := range ch.CreateExecutions {
		if err := belongs("task execution", x.ID, x.OrgID, x.EnvironmentID, orgID, envID); err != nil {
			return err
		}
		if err := db.insertExecution(ctx, tx, x); err != nil {
			return err
		}
	}
	return nil
}

func belongs(kind, id, gotOrg, gotEnv, orgID, envID string) error {
	if gotOrg != orgID || gotEnv != envID {
		return fmt.Errorf("%s %q belongs to environment %q of organization %q, not to environment %q of organization %q",
			kind, id, gotEnv, gotOrg, envID, orgID)
	}
	return nil
}

func (db *DB) deleteItem(ctx context.Context, tx *sql.Tx, table, orgID, envID, id, what string) error {
	res, err := tx.ExecContext(ctx, db.q(`DELETE FROM `+table+` WHERE org_id = ? AND environment_id = ? AND id = ?`), orgID, envID, id)
	if err != nil {
		return db.translate(err, what)
	}
	return db.oneRow(res, what)
}
