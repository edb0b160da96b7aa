// Package events is the change feed of the control plane: every change to a
// runner, environment, service, task, task execution or secret, in the order
// the database committed it, for gitpod.v1 EventService/WatchEvents and any
// other reader in the binary (the web console).
//
// The store records each change as a row of its events table in the same
// transaction as the change (database triggers, so no write path can forget
// one). A Hub per control-plane process tails that table, woken by
// NOTIFY on PostgreSQL (a change made on another replica) and by the store
// after each commit (a change made here), with a bounded poll as a safety
// net, and hands each event to its subscribers. An event's ID is its
// position: a subscriber that comes back with the last ID it saw gets every
// event after it that the retention kept.
package events

import (
	"context"
	"sync/atomic"
	"time"
)

// Resource types and operations are named as the vendor's enums
// (gitpod.v1.ResourceType, gitpod.v1.ResourceOperation).
const (
	TypeRunner        = "RESOURCE_TYPE_RUNNER"
	TypeEnvironment   = "RESOURCE_TYPE_ENVIRONMENT"
	TypeService       = "RESOURCE_TYPE_SERVICE"
	TypeTask          = "RESOURCE_TYPE_TASK"
	TypeTaskExecution = "RESOURCE_TYPE_TASK_EXECUTION"
	TypeSecret        = "RESOURCE_TYPE_SECRET"

	// The console's kinds (WatchRequest.Console): never in WatchEvents.
	// A pod is an agent's session; an organization event is a change of
	// the organization, its members or its invites; a user event is a
	// change of a member's own list of organizations (Owner is the member);
	// an API key event's Owner is the user who owns the key ("" for a
	// service account's). RESOURCE_TYPE_AUDIT_LOG is runyard's own.
	TypeAgentExecution = "RESOURCE_TYPE_AGENT_EXECUTION"
	TypeAgent          = "RESOURCE_TYPE_AGENT"
	TypeOrganization   = "RESOURCE_TYPE_ORGANIZATION"
	TypeUser           = "RESOURCE_TYPE_USER"
	TypeAPIKey         = "RESOURCE_TYPE_PERSONAL_ACCESS_TOKEN"
	TypeAuditLog       = "RESOURCE_TYPE_AUDIT_LOG"

	OpCreate       = "RESOURCE_OPERATION_CREATE"
	OpUpdate       = "RESOURCE_OPERATION_UPDATE"
	OpDelete       = "RESOURCE_OPERATION_DELETE"
	OpUpdateStatus = "RESOURCE_OPERATION_UPDATE_STATUS"
)

// Event is one committed change.
type Event struct {
	// ID is the event's position in the feed, increasing in commit order.
	ID           int64
	OrgID        string
	ResourceType string
	ResourceID   string
	Operation    string
	// EnvironmentID is the environment an environment event, or a service,
	// task or execution event, belongs to; empty for other kinds.
	EnvironmentID string
	// Owner is the user or service account a secret belongs to; empty for
	// the organization's.
	Owner     string
	CreatedAt time.Time

	// shared holds the event's encodings (Encoded) once the hub published it.
	shared *encodings
}

// Store is the events table.
type Store interface {
	// ReadEvents returns up to limit events with ID > after, in ID order.
	// On a store that draws IDs before commit, an ID missing below a
	// returned one may still commit: see EventsFence. (The SQL stores give
	// IDs in commit order: none ever appears below one read.)
	ReadEvents(ctx context.Context, after int64, limit int) ([]Event, error)
	// EventsFence returns the transactions running now that may have drawn
	// an event ID: an ID missing from a read made before the call commits,
	// if ever, by one of them. Empty when none is (always on SQLite, whose
	// one writer commits IDs in order).
	EventsFence(ctx context.Context) (Fence, error)
	// EventsSettled reports whether every transaction of fence has ended.
	EventsSettled(ctx context.Context, fence Fence) (bool, error)
	// EventBounds returns the lowest and highest IDs kept (0, 0 when none).
	EventBounds(ctx context.Context) (oldest, latest int64, err error)
	// PruneEvents deletes events created before cutoff.
	PruneEvents(ctx context.Context, cutoff time.Time) (int64, error)
	// Committed is signalled after write transactions of this process
	// commit: a cheap wake-up for the hub (nil if the store has none).
	Committed() <-chan struct{}
}

// Fence names transactions of the store (EventsFence), in the store's own
// terms.
type Fence []uint64

// formats is how many encodings of an event Encoded shares.
const formats = 4

// encodings are an event's bytes in each wire format, made by the first
// stream that sends it.
type encodings struct {
	b [formats]atomic.Pointer[[]byte]
}

// Encoded returns encode(e). For an event the hub handed out it is made once
// per format (0 to 3, the caller's numbering) and shared by every stream that
// sends e in that format: the feed's cost of encoding follows the events, not
// the events times the watchers. Nobody may modify the bytes.
func (e Event) Encoded(format int, encode func(Event) ([]byte, error)) ([]byte, error) {
	if e.shared == nil {
		return encode(e)
	}
	slot := &e.shared.b[format]
	if p := slot.Load(); p != nil {
		return *p, nil
	}
	b, err := encode(e)
	if err != nil {
		return nil, err
	}
	slot.CompareAndSwap(nil, &b)
	return *slot.Load(), nil
}
