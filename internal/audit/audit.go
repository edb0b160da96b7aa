// Package audit is the audit log: one entry per mutating API call, on every
// surface, written in the same transaction as the change it records.
//
// The flow: an API adapter (one per surface: connectapi's interceptor, the
// HTTP middleware of the REST and Kubiya APIs) puts a Draft into the call's
// context; the store's transaction helper writes the draft as an entry inside
// the first transaction that commits with that context, and marks it
// written; after the call the adapter finishes the draft: a call that failed
// before (or without) a committed transaction gets its entry written alone
// with the error code. So a call that commits writes exactly one entry, a
// failed call one with its code, and reads none (they carry no draft).
// Entries hold ids and names of methods only, never request bodies, so no
// secret reaches them.
package audit

import (
	"context"
	"sync"
	"time"

	"github.com/runyard/runyard/internal/identity"
)

// OutcomeOK is the outcome of a call that succeeded; failed calls carry
// their apperr code (e.g. "permission_denied").
const OutcomeOK = "ok"

// Object types beyond the gitpod.v1 ResourceType names.
const (
	TypeAPIKey    = "RESOURCE_TYPE_PERSONAL_ACCESS_TOKEN"
	TypePod       = "pod"
	TypeAgentType = "agent_type"
	// TypeUser is a user; a membership change records its user.
	TypeUser = "RESOURCE_TYPE_USER"
	// TypeInvite is an invitation to an organization (by its id, never
	// its token).
	TypeInvite = "invite"
)

// Surfaces name the API an entry came through.
const (
	SurfaceConnect = "connect"
	SurfaceREST    = "rest"
	SurfaceKubiya  = "kubiya"
	// SurfaceAuth is the browser's sign-in endpoints under /auth/.
	SurfaceAuth = "auth"
	// SurfaceSSH is the SSH server (runyard server --ssh-listen): one
	// entry per channel opened (a shell, a command, sftp, a port forward).
	SurfaceSSH = "ssh"
)

// Entry is one recorded call.
type Entry struct {
	Seq   int64
	OrgID string
	// Actor is who called: principal kind and subject id; KeyID the token
	// it authenticated with. UserID is the person behind it once users
	// exist ('' until then). All empty for an unauthenticated call.
	ActorPrincipal identity.Principal
	ActorID        string
	KeyID          string
	UserID         string
	// Surface and Method say what was called: "connect" and
	// "gitpod.v1.RunnerService/CreateRunner", or "rest" and
	// "POST /api/v1/orgs/{org}/pods".
	Surface string
	Method  string
	// ObjectType (a gitpod.v1 ResourceType name where one fits, e.g.
	// RESOURCE_TYPE_RUNNER) and ObjectID name the object acted on.
	ObjectType string
	ObjectID   string
	ClientIP   string
	UserAgent  string
	Outcome    string
	CreatedAt  time.Time
}

// Draft is the entry of one call in progress. It is safe for concurrent use:
// a call's work may run on several goroutines.
type Draft struct {
	mu      sync.Mutex
	e       Entry
	written bool
	// finished is set once Finish returned an entry: a call ends once.
	finished bool
	caller   *identity.Caller
	failed   string
}

type draftKey struct{}

// Begin returns ctx carrying a new draft for a mutating call.
func Begin(ctx context.Context, surface, method, objectType, clientIP, userAgent string) (context.Context, *Draft) {
	d := &Draft{e: Entry{Surface: surface, Method: method, ObjectType: objectType, ClientIP: clientIP, UserAgent: truncate(userAgent, 256)}}
	return context.WithValue(ctx, draftKey{}, d), d
}

// Detach returns ctx without its draft, for a write that is not the call's
// change (the failure count of a refused sign-in): its transaction must
// not take the call's entry.
func Detach(ctx context.Context) context.Context {
	return context.WithValue(ctx, draftKey{}, (*Draft)(nil))
}

// FromContext returns the draft of ctx, if any.
func FromContext(ctx context.Context) (*Draft, bool) {
	d, ok := ctx.Value(draftKey{}).(*Draft)
	return d, ok && d != nil
}

// SetObject names the object the call acts on; the store calls it when it
// creates one (its id is known only then).
func SetObject(ctx context.Context, objectType, id string) {
	d, ok := FromContext(ctx)
	if !ok {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// The first object of the call's own type is the one it acts on: a
	// StartTask (a task's call) also creates an execution, a file apply
	// (an environment's call) services and tasks.
	if d.e.ObjectID != "" || (d.e.ObjectType != "" && d.e.ObjectType != objectType) {
		return
	}
	d.e.ObjectType = objectType
	d.e.ObjectID = id
}

// SetCaller records who calls, for an entry written outside the call's
// context (an adapter that authenticates inside its handler).
func (d *Draft) SetCaller(c *identity.Caller) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.caller = c
}

// Pending returns the entry to write within a transaction of ctx, or false
// when the draft was written already. The caller comes from ctx when it
// has one.
func (d *Draft) Pending(ctx context.Context, now time.Time) (Entry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.written {
		return Entry{}, false
	}
	c, ok := identity.FromContext(ctx)
	if !ok {
		c = d.caller
	}
	return d.entry(c, OutcomeOK, now), true
}

// MarkWritten records that the entry committed.
func (d *Draft) MarkWritten() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.written = true
}

// Finish returns the entry to write alone after the call, or false when it
// committed with the change. outcome is OutcomeOK or the error code; a
// successful call that committed nothing (an idempotent stop of a stopped
// service) is recorded too. A call that failed after one of its
// transactions committed (and wrote the entry, as "ok") gets a second
// entry with its error: the log is append-only, and the first entry is
// true of the change that did commit.
func (d *Draft) Finish(ctx context.Context, outcome string, now time.Time) (Entry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.written && (outcome == OutcomeOK || d.finished) {
		return Entry{}, false
	}
	d.written, d.finished = true, true
	c, ok := identity.FromContext(ctx)
	if !ok {
		c = d.caller
	}
	return d.entry(c, outcome, now), true
}

func (d *Draft) entry(c *identity.Caller, outcome string, now time.Time) Entry {
	e := d.e
	e.Outcome = outcome
	e.CreatedAt = now.UTC().Truncate(time.Microsecond)
	if c != nil {
		e.OrgID = c.OrgID
		e.ActorPrincipal = c.Subject.Principal
		e.ActorID = c.Subject.ID
		e.KeyID = c.TokenID
		e.UserID = c.UserID
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Failed records the error code a call answers with, for an adapter that
// learns it only from the answer (the HTTP APIs' error writers).
func Failed(ctx context.Context, code string) {
	if d, ok := FromContext(ctx); ok {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.failed = code
	}
}

// FailedWith returns the code Failed recorded, "" if none.
func (d *Draft) FailedWith() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failed
}
