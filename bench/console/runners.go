package main

// This file is part 2: the runners page of a fleet of 10,000 runners,
// served time and bytes per page change, beside a bare handler that serves
// the same bytes from memory in the same process.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/bench/internal/report"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store/sqlite"
)

// seedRunners writes n runners into the default organization straight
// into the store (through the API the setup would take minutes): a tenth
// of them DEGRADED, the rest ACTIVE, named runner-00000 ... in order.
func seedRunners(ctx context.Context, dir string, n int) error {
	st, err := sqlite.Open(ctx, filepath.Join(dir, "runyard.db"))
	if err != nil {
		return fmt.Errorf("open the store to seed it: %w", err)
	}
	defer st.Close()
	org, err := st.FindOrganizationByName(ctx, identity.DefaultOrganization)
	if err != nil {
		return fmt.Errorf("default organization: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := range n {
		phase := runners.PhaseActive
		if i%10 == 9 {
			phase = runners.PhaseDegraded
		}
		r := &runners.Runner{
			ID: uuid.NewString(), OrgID: org.ID, Name: fmt.Sprintf("runner-%05d", i),
			Kind: runners.KindLocal, Provider: runners.ProviderLinuxHost,
			Spec: runners.Spec{DesiredPhase: runners.PhaseActive, Variant: runners.VariantUnspecified,
				Configuration: runners.Configuration{ReleaseChannel: runners.ReleaseChannelStable, LogLevel: runners.LogLevelInfo}},
			Status:    runners.Status{Phase: phase, Version: "bench", Region: "loopback"},
			Creator:   identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalServiceAccount},
			CreatedAt: now, UpdatedAt: now,
		}
		if err := st.CreateRunner(ctx, r, nil); err != nil {
			return fmt.Errorf("seed runner %d: %w", i, err)
		}
	}
	return nil
}

var nextRE = regexp.MustCompile(`href="/runners\?[^"]*token=([^"&]+)`)

// benchRunnersPage fetches pages of the runners list n times each and
// prints the time per page (the round trip on loopback: the server's
// time, the client's being the bare handler's) and its bytes.
func benchRunnersPage(ctx context.Context, base string, fleet, n int) (string, error) {
	first, _, err := fetch(base+"/runners", true)
	if err != nil {
		return "", err
	}
	m := nextRE.FindSubmatch(first)
	if m == nil {
		return "", fmt.Errorf("the runners page of %d runners links no next page", fleet)
	}
	token := string(m[1])
	pages := []struct{ name, path string }{
		{"first page", "/runners"},
		{"next page (a page change)", "/runners?token=" + token},
		{"filter: phase DEGRADED", "/runners?phase=RUNNER_PHASE_DEGRADED"},
		{"filter: name, last runner", fmt.Sprintf("/runners?name=runner-%05d", fleet-1)},
		{"filter: name, no match", "/runners?name=nope"},
	}
	// The baseline serves the first page's bytes from memory.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(first)
	}))
	fmt.Printf("== the runners page of %d runners: %d requests per page, one at a time, loopback\n", fleet, n)
	var bare float64
	row := func(name, url string, auth bool) error {
		var ds []float64
		var size int
		for range n {
			start := time.Now()
			body, _, err := fetch(url, auth)
			if err != nil {
				return err
			}
			ds = append(ds, float64(time.Since(start).Microseconds())/1000)
			size = len(body)
		}
		fmt.Printf("%-28s p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  %7d bytes\n",
			name, pct(ds, 50), pct(ds, 99), pct(ds, 100), size)
		if !auth {
			bare = pct(ds, 50)
			return nil
		}
		t := report.AtMost(200)
		report.Emit(report.Figure{Bench: "console", Name: fmt.Sprintf("runners page of %d, %s, p50", fleet, name), Value: pct(ds, 50), Unit: "ms",
			Baseline: bare, BaselineName: "bare handler", Count: float64(size), CountUnit: "B/page"}, &t)
		return nil
	}
	if err := row("baseline: bare handler", "http://"+ln.Addr().String()+"/", false); err != nil {
		return "", err
	}
	for _, p := range pages {
		if err := row(p.name, base+p.path, true); err != nil {
			return "", err
		}
	}
	return token, ctx.Err()
}
