package kubiya

import (
	"sync"
	"time"

	"github.com/runyard/runyard/internal/runners"
)

// Health values. status is the verdict, health the reason: a live runner's
// component is healthy/ok or unhealthy/error; a runner that is not live, or a
// component it never reported, is unknown (health offline or unknown).
const (
	statusHealthy   = "healthy"
	statusUnhealthy = "unhealthy"
	statusUnknown   = "unknown"

	healthOK      = "ok"
	healthError   = "error"
	healthOffline = "offline"
	healthUnknown = "unknown"
)

type componentHealth struct {
	Status  string `json:"status"`
	Health  string `json:"health"`
	Version string `json:"version"`
}

// component finds a component in the runner's last report.
func component(r *runners.Runner, name string) (runners.Component, bool) {
	for _, c := range r.Report.Components {
		if c.Name == name {
			return c, true
		}
	}
	return runners.Component{}, false
}

// componentHealthOf judges one component from the runner's stored report.
// The report says nothing about now unless the runner is live, so a silent
// runner's components are unknown; their version is the last one reported.
func componentHealthOf(r *runners.Runner, name string, live bool) componentHealth {
	c, ok := component(r, name)
	switch {
	case !live:
		return componentHealth{Status: statusUnknown, Health: healthOffline, Version: c.Version}
	case !ok:
		return componentHealth{Status: statusUnknown, Health: healthUnknown}
	case c.Healthy:
		return componentHealth{Status: statusHealthy, Health: healthOK, Version: c.Version}
	default:
		return componentHealth{Status: statusUnhealthy, Health: healthError, Version: c.Version}
	}
}

// listWorkers bounds how many runners' healths are computed at once.
const listWorkers = 8

// withHealth returns the runners of the list with their three component
// healths, in the order given. The seed fetches the healths concurrently;
// here each comes from the report the runner sent over its stream and the
// store keeps, so no runner is called. The pool still computes the runners
// concurrently, bounded, so a long list is not one long loop.
func (h *handler) withHealth(all []*runners.Runner, now time.Time) []runnerJSON {
	out := make([]runnerJSON, len(all))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(listWorkers, len(all)) {
		wg.Go(func() {
			for i := range next {
				r := all[i]
				live := r.Live(now, h.svc.RunnerTimeout)
				j := h.runnerJSON(r)
				rh := componentHealthOf(r, runners.ComponentRunner, live)
				th := componentHealthOf(r, runners.ComponentToolManager, live)
				ah := componentHealthOf(r, runners.ComponentAgent, live)
				j.RunnerHealth, j.ToolManagerHealth, j.AgentManagerHealth = &rh, &th, &ah
				out[i] = j
			}
		})
	}
	for i := range all {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

type healthJSON struct {
	Health  string      `json:"health"`
	Status  string      `json:"status"`
	Time    string      `json:"time"`
	Version string      `json:"version"`
	Checks  []checkJSON `json:"checks"`
}

type checkJSON struct {
	Name     string            `json:"name"`
	Status   string            `json:"status"`
	Version  string            `json:"version"`
	Metadata checkMetadataJSON `json:"metadata"`
}

type checkMetadataJSON struct {
	GitSHA  string `json:"git_sha"`
	Release string `json:"release"`
}

// healthOf is the health response: the runner's verdict, the time it was
// judged at, and one check per manager component as the seed lists them.
// A live runner is healthy when every component it reported is.
func (h *handler) healthOf(r *runners.Runner, now time.Time) healthJSON {
	live := r.Live(now, h.svc.RunnerTimeout)
	out := healthJSON{
		Health: healthOK, Status: statusHealthy,
		Time:    now.Format(time.RFC3339),
		Version: r.Report.Version,
		Checks:  []checkJSON{},
	}
	if c, ok := component(r, runners.ComponentRunner); ok && c.Version != "" {
		out.Version = c.Version
	}
	switch {
	case !live:
		out.Health, out.Status = healthOffline, statusUnknown
	default:
		for _, c := range r.Report.Components {
			if !c.Healthy {
				out.Health, out.Status = healthError, statusUnhealthy
			}
		}
	}
	for _, name := range []string{runners.ComponentToolManager, runners.ComponentAgent} {
		c, _ := component(r, name)
		ch := componentHealthOf(r, name, live)
		out.Checks = append(out.Checks, checkJSON{
			Name: name, Status: ch.Status, Version: ch.Version,
			Metadata: checkMetadataJSON{GitSHA: c.GitSHA, Release: c.Release},
		})
	}
	return out
}
