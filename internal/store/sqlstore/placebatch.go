package sqlstore

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/pods"
)

// This file places the pods that callers of one process create at the same
// time in one organization together, on PostgreSQL: one statement
// (runyard_place_pods, migration 00037) takes the organization's placement
// lock, places the pods of each demand (agent type and labels) with one
// walk of the placement index, stores them with their audit entries, and
// commits as it ends.
//
// Placing one pod per transaction held the lock over four round trips
// (the lock, the query, the insert, the commit), and on a busy host a
// preempted holder kept every other placement of the organization waiting
// (366 pods/s at 10,000 runners); each placement query also walked past
// every runner of the lowest counts that does not fit. The lock is now held
// for the server's own work, once per batch, and a replica has at most one
// statement waiting for it per organization.
//
// Decisions stay those of pods.place on one pod after another: the pods of
// the first demand to come, in the order they came, then those of the
// next. Concurrent creates have no order of their own, and pods of one
// demand placed together are placed exactly as one after another
// (TestPlaceBatch_SameAsOneByOne). A pod that fits no runner, or every pod
// of a batch that failed (a key already taken, say: the statement stores
// none of its pods), goes back to its caller, which places it alone in its
// own transaction (createCounted), where the wait reason and the error are
// worked out as before. A pod that asks for a runner by number is placed
// alone too.

// maxPlaceBatch bounds the pods one statement places.
const maxPlaceBatch = 128

// placeTimeout bounds one batch statement: it serves many callers, so no
// single caller's context governs it.
const placeTimeout = time.Minute

// placeRequest is one pod waiting for its batch.
type placeRequest struct {
	ctx   context.Context
	p     *pods.Pod
	f     pods.CandidateFilter
	draft *audit.Draft
	entry *audit.Entry
	// placed says the batch stored the pod on a runner; otherwise the
	// caller places it alone. Set before done is closed.
	placed bool
	done   chan struct{}
}

// placeQueues holds, per organization, the pods waiting for the next batch.
// An organization has a key while a goroutine drains its queue.
type placeQueues struct {
	mu   sync.Mutex
	orgs map[string][]*placeRequest
}

// batched reports whether this store places pods in batches.
func (db *DB) batched() bool { return db.dialect.Name == "postgres" && !db.placeOneByOne }

// createBatched is CreatePlacedPod for a pod that may go on any runner.
func (db *DB) createBatched(ctx context.Context, p *pods.Pod, f pods.CandidateFilter) error {
	if p.DesiredStatus == "" {
		p.DesiredStatus = pods.StatusRunning
	}
	r := &placeRequest{ctx: ctx, p: p, f: f, done: make(chan struct{})}
	if d, e, ok := pendingAudit(ctx); ok {
		r.draft, r.entry = d, &e
	}
	q := &db.batches
	q.mu.Lock()
	if q.orgs == nil {
		q.orgs = map[string][]*placeRequest{}
	}
	waiting, draining := q.orgs[f.OrgID]
	q.orgs[f.OrgID] = append(waiting, r)
	q.mu.Unlock()
	if !draining {
		go db.drainPlacements(f.OrgID)
	}
	// The statement is bounded by placeTimeout; the pod may be stored
	// even if ctx ends meanwhile, so its outcome is waited for.
	<-r.done
	if r.placed {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.createCounted(ctx, p, f)
}

// drainPlacements places the queued pods of orgID, a batch at a time, until
// none is left.
func (db *DB) drainPlacements(orgID string) {
	q := &db.batches
	for {
		q.mu.Lock()
		batch := q.orgs[orgID]
		if len(batch) == 0 {
			delete(q.orgs, orgID)
			q.mu.Unlock()
			return
		}
		n := min(len(batch), maxPlaceBatch)
		q.orgs[orgID] = batch[n:]
		q.mu.Unlock()
		db.placeBatch(orgID, batch[:n])
		for _, r := range batch[:n] {
			close(r.done)
		}
	}
}

// batchPod is a pod as runyard_place_pods reads it.
type batchPod struct {
	Ord           int             `json:"ord"`
	Key           string          `json:"key"`
	Status        string          `json:"status"`
	AgentTypeID   string          `json:"agent_type_id"`
	InitialPrompt string          `json:"initial_prompt"`
	Labels        string          `json:"labels"`
	Workdir       string          `json:"workdir"`
	Reason        string          `json:"reason"`
	ExitCode      *int            `json:"exit_code"`
	CreatedAt     int64           `json:"created_at"`
	StartedAt     *int64          `json:"started_at"`
	FinishedAt    *int64          `json:"finished_at"`
	Env           string          `json:"env"`
	Spec          string          `json:"spec"`
	DesiredStatus string          `json:"desired_status"`
	LiveAfter     int64           `json:"live_after"`
	WantAgent     json.RawMessage `json:"want_agent"`
	WantLabels    json.RawMessage `json:"want_labels"`
	Audit         *batchAudit     `json:"audit,omitempty"`
}

// batchAudit is an audit entry as runyard_place_pods reads it.
type batchAudit struct {
	OrgID          string `json:"org_id"`
	ActorPrincipal string `json:"actor_principal"`
	ActorID        string `json:"actor_id"`
	KeyID          string `json:"key_id"`
	UserID         string `json:"user_id"`
	Surface        string `json:"surface"`
	Method         string `json:"method"`
	ObjectType     string `json:"object_type"`
	ObjectID       string `json:"object_id"`
	ClientIP       string `json:"client_ip"`
	UserAgent      string `json:"user_agent"`
	Outcome        string `json:"outcome"`
	CreatedAt      int64  `json:"created_at"`
}

func optMicros(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	v := micros(*t)
	return &v
}

// encodeBatch returns the batch argument of runyard_place_pods for rs.
func encodeBatch(rs []*placeRequest) ([]byte, error) {
	rows := make([]batchPod, len(rs))
	for i, r := range rs {
		p := r.p
		labels, env, spec, err := podDocs(p)
		if err != nil {
			return nil, err
		}
		agent, want, err := demand(p)
		if err != nil {
			return nil, err
		}
		rows[i] = batchPod{Ord: i, Key: p.Key, Status: string(p.Status), AgentTypeID: p.AgentTypeID, InitialPrompt: p.InitialPrompt,
			Labels: labels, Workdir: p.Workdir, Reason: p.Reason, ExitCode: p.ExitCode, CreatedAt: micros(p.CreatedAt),
			StartedAt: optMicros(p.StartedAt), FinishedAt: optMicros(p.FinishedAt), Env: env, Spec: spec,
			DesiredStatus: string(p.DesiredStatus), LiveAfter: micros(r.f.LiveAfter),
			WantAgent: json.RawMessage(agent), WantLabels: json.RawMessage(want)}
		if e := r.entry; e != nil {
			rows[i].Audit = &batchAudit{OrgID: e.OrgID, ActorPrincipal: string(e.ActorPrincipal), ActorID: e.ActorID,
				KeyID: e.KeyID, UserID: e.UserID, Surface: e.Surface, Method: e.Method, ObjectType: e.ObjectType,
				ObjectID: e.ObjectID, ClientIP: e.ClientIP, UserAgent: e.UserAgent, Outcome: e.Outcome,
				CreatedAt: micros(e.CreatedAt)}
		}
	}
	return json.Marshal(rows)
}

// placeBatch places rs, pods of orgID, in one statement and marks the ones
// it stored. Whatever it could not do is left to the callers.
func (db *DB) placeBatch(orgID string, rs []*placeRequest) {
	live := rs[:0:0]
	for _, r := range rs {
		if r.ctx.Err() == nil {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	batch, err := encodeBatch(live)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), placeTimeout)
	defer cancel()
	rows, err := db.write.QueryContext(ctx, `SELECT pod_key, pod_seq, chosen_id, chosen_seq FROM runyard_place_pods($1, $2, $3::jsonb)`,
		placementLockClass, orgID, string(batch))
	if err != nil {
		return
	}
	defer rows.Close()
	type result struct {
		seq, runnerSeq int64
		runnerID       string
	}
	placed := map[string]result{}
	for rows.Next() {
		var key string
		var res result
		if err := rows.Scan(&key, &res.seq, &res.runnerID, &res.runnerSeq); err != nil {
			return
		}
		placed[key] = res
	}
	// The statement commits when its last row is read: an error up to here
	// means nothing of the batch is stored.
	if rows.Err() != nil || rows.Close() != nil {
		return
	}
	for _, r := range live {
		res, ok := placed[r.p.Key]
		if !ok {
			continue
		}
		r.p.Seq, r.p.RunnerID, r.p.RunnerSeq, r.p.Reason = res.seq, res.runnerID, res.runnerSeq, ""
		r.placed = true
		if r.draft != nil {
			r.draft.MarkWritten()
		}
	}
	if len(placed) > 0 {
		db.signalCommit()
	}
}
