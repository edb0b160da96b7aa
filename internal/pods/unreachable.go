package pods

import (
	"context"

	"github.com/runyard/runyard/internal/runners"
)

// A pod whose runner went INACTIVE is not failed at once: the runner may
// be cut off while the pod runs on, and a runner that comes back is handed
// its pods again and keeps them running (not restarted, not killed). Until
// then the pod keeps its status (pending or running, as last known) and its
// reason says that the runner is unreachable, on every read, with nothing
// stored. Once the runner has been unreachable for longer than the control
// plane's --lost-after, FailRunnerPods fails it for good; it leaves the
// runner's desired state, so a runner that comes back stops it. A pod a
// user terminated meanwhile is stopped when the runner comes back.

// runnerFinder is the part of the store that reads runners; the SQL store
// has it. A store without it marks nothing unreachable.
type runnerFinder interface {
	FindRunnerByID(ctx context.Context, orgID, id string) (*runners.Runner, error)
}

// markUnreachable sets the reason of each active pod on an INACTIVE runner.
func (s *Service) markUnreachable(ctx context.Context, orgID string, ps ...*Pod) error {
	var find runners.FindFunc
	if f, ok := s.Store.(runnerFinder); ok {
		find = f.FindRunnerByID
	}
	reach := runners.NewReachability(orgID, find)
	for _, p := range ps {
		if !p.Active() {
			continue
		}
		msg, err := reach.Message(ctx, p.RunnerID)
		if err != nil {
			return err
		}
		if msg != "" {
			p.Reason = msg
		}
	}
	return nil
}
