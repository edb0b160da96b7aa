package main

// This file is part 4: how soon a change made through the API shows on an
// open page (the "within 1 s"): a pod created over REST on the pods
// page, a runner renamed over Connect on the runners page. The latency runs
// from the API's answer (the change is committed by then) to the moment a
// MutationObserver in the page sees the new row, on the page's clock and
// ours (one machine, one wall clock). The baseline, same run, same page:
// one in-page fetch of the page (what each update does once the feed said
// so); the rest is the feed's delivery and the page's 150 ms coalescing of
// a burst of changes into one refetch.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/runyard/runyard/bench/internal/report"
)

func benchLive(ctx, bctx context.Context, base string, rounds int) error {
	post := func(path, contentType, body string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewBufferString(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", contentType)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(res.Body)
		if res.StatusCode/100 != 2 {
			return nil, fmt.Errorf("POST %s: %d %s", path, res.StatusCode, buf.String())
		}
		return buf.Bytes(), nil
	}
	if _, err := post("/api/v1/orgs/default/agents", "application/json", `{"id":"live-bench","name":"Live","command":["sleep","3600"]}`); err != nil {
		return err
	}
	out, err := post("/gitpod.v1.RunnerService/CreateRunner", "application/json", `{"name":"live-bench-0","provider":"RUNNER_PROVIDER_LINUX_HOST"}`)
	if err != nil {
		return err
	}
	var created struct {
		Runner struct {
			RunnerID string `json:"runnerId"`
		} `json:"runner"`
	}
	if err := json.Unmarshal(out, &created); err != nil {
		return fmt.Errorf("create runner: %w", err)
	}
	for _, p := range []struct {
		name, path, rows string
		change           func(i int) error
	}{
		{"pods page, a pod created (REST)", "/pods", `tr[data-pod]`, func(int) error {
			_, err := post("/api/v1/orgs/default/pods", "application/json", `{"agent_type_id":"live-bench","initial_prompt":"live"}`)
			return err
		}},
		{"runners page, a runner renamed (Connect)", "/runners", `tr[data-runner^="live-bench-"]`, func(i int) error {
			_, err := post("/gitpod.v1.RunnerService/UpdateRunner", "application/json",
				fmt.Sprintf(`{"runnerId":%q,"name":"live-bench-%d"}`, created.Runner.RunnerID, i+1))
			return err
		}},
	} {
		var lat, fetches []float64
		for i := range rounds {
			if err := chromedp.Do(bctx, chromedp.Navigate(base+p.path)); err != nil {
				return err
			}
			if err := waitTrue(bctx, `document.documentElement.dataset.ready === "true" && document.getElementById("live-status")?.dataset.state === "live"`, 30*time.Second); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			// The page's row set as it is; the observer stamps the first
			// change of it (a new row, or a row renamed: its text).
			if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => {
				const sig = () => Array.from(document.querySelectorAll(`+jsq(p.rows)+`)).map((r) => r.dataset.pod || r.dataset.runner).join(",");
				const before = sig();
				window.__seen = 0;
				new MutationObserver(() => { if (!window.__seen && sig() !== before) window.__seen = performance.timeOrigin + performance.now(); })
					.observe(document.body, {childList: true, subtree: true});
				return true })()`)); err != nil {
				return err
			}
			if err := p.change(i); err != nil {
				return err
			}
			answered := float64(time.Now().UnixNano()) / 1e6
			deadline := time.Now().Add(10 * time.Second)
			for {
				seen, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`window.__seen`))
				if err == nil && seen > 0 {
					lat = append(lat, max(0, seen-answered))
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("%s: the change was not shown within 10 s", p.name)
				}
				time.Sleep(10 * time.Millisecond)
			}
			f, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`(async () => {
				const t = performance.now();
				const r = await fetch(location.href, {headers: {"X-Runyard-Refresh": "1"}});
				await r.text();
				return performance.now() - t })()`, chromedp.EvalAwaitPromise))
			if err != nil {
				return err
			}
			fetches = append(fetches, f)
		}
		fmt.Printf("%-44s change → shown: p50 %6.1f ms  p99 %6.1f ms   (baseline: one in-page fetch of the page p50 %5.1f ms)\n",
			p.name, pct(lat, 50), pct(lat, 99), pct(fetches, 50))
		t := report.AtMost(1000)
		report.Emit(report.Figure{Bench: "console", Name: "live update, " + p.name + ", p99", Value: pct(lat, 99), Unit: "ms",
			Baseline: pct(fetches, 50), BaselineName: "one in-page fetch of the page"}, &t)
	}
	return nil
}

// waitTrue polls a JavaScript expression in the page until it is true,
// for at most within.
func waitTrue(bctx context.Context, expr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not so after %s: %s", within, expr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// jsq quotes s as a JavaScript string.
func jsq(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
