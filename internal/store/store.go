// Package store defines the one storage interface of the control plane. The
// implementations are internal/store/sqlite and internal/store/postgres (both
// built on internal/store/sqlstore); internal/store/storetest is the
// conformance suite that every implementation passes.
package store

import (
	"context"

	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/fleet"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/metrics"
	"github.com/runyard/runyard/internal/orgs"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/prebuilds"
	"github.com/runyard/runyard/internal/releases"
	"github.com/runyard/runyard/internal/replicaproxy"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/secrets"
	"github.com/runyard/runyard/internal/sessions"
	"github.com/runyard/runyard/internal/sshkeys"
	"github.com/runyard/runyard/internal/sso"
	"github.com/runyard/runyard/internal/users"
)

// Store is everything the domain services persist. Methods return
// *apperr.Error with CodeNotFound or CodeConflict as each domain interface
// documents; other errors are internal.
type Store interface {
	identity.Store
	orgs.Store
	users.Store
	// metrics.Counter counts objects by phase for /metrics.
	metrics.Counter
	runners.Store
	pods.Store
	environments.Store
	secrets.Store
	automations.Store
	replicaproxy.Sessions
	fleet.Epochs
	envaccess.Store
	sshkeys.Store
	KeyStore
	events.Store
	audit.Store
	sso.StateStore
	sessions.Store
	releases.Store
	prebuilds.Store
	prebuilds.ScheduleStore

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}
