package fleet

import (
	"context"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/releases"
	"github.com/runyard/runyard/internal/runners"
)

// Releases is where the fleet finds the release of a runner's channel
// (releases.Service).
type Releases interface {
	Current(ctx context.Context, ch releases.Channel) (*releases.Release, error)
}

// SetReleases makes the fleet put the release of their channel in the
// desired state of runners with autoUpdate on.
func (f *Fleet) SetReleases(r Releases) { f.releases = r }

// addUpdate puts the release of r's channel in d when r updates itself and
// the release has an archive for r's platform. The runner compares the
// version with its own: the same version is nothing to do.
func (f *Fleet) addUpdate(ctx context.Context, r *runners.Runner, d *runnerv1.DesiredState) error {
	c := r.Spec.Configuration
	if f.releases == nil || !c.AutoUpdate || r.Spec.DesiredPhase == runners.PhaseDeleted {
		return nil
	}
	ch := releases.OfRunner(string(c.ReleaseChannel))
	rel, err := f.releases.Current(ctx, ch)
	if err != nil || rel == nil {
		return err
	}
	a, ok := rel.ArchiveFor(r.Report.OS, r.Report.Arch)
	if !ok {
		return nil
	}
	u := &runnerv1.RunnerUpdate{
		Version: rel.Version, Channel: string(ch), Archive: a.File, Sha256: a.SHA256,
		DownloadPath: releases.DownloadPath(ch, a.File), Sums: rel.Sums, SumsSignature: rel.Signature,
	}
	if w := c.UpdateWindow; w != nil {
		u.HasWindow, u.StartHour, u.EndHour = true, w.StartHour, w.EndHour
	}
	d.Update = u
	return nil
}
