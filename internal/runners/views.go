package runners

import "context"

// Views is what a Store offers when it keeps a read model of runners in
// memory (sqlstore's runner view): Get and List, what the API surfaces read
// most, use it. Its answers are those of FindRunnerOrTombstone and
// FindRunners, reflecting every change made through this process at once and
// a change made by another replica once its notice arrived. The rest of the
// control plane reads the Store.
type Views interface {
	ViewRunner(ctx context.Context, orgID, id string) (*Runner, error)
	ViewRunners(ctx context.Context, f Filter) ([]*Runner, error)
}
