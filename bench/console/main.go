// Command console measures the web console's first load on loopback: the
// bytes of the page, its script and its CSS (as served, and gzipped), and
// how long headless Chromium takes until the page is interactive (the
// console's island marks "runyard-ready" once its handlers are bound and
// the live feed is opening). Beside it, the same figures for a bare static
// page served by net/http in the same process: the baseline. Part 2
// (runners.go) seeds a fleet of runners and times the runners page's page
// changes and filters against a bare handler; live.go times how soon a
// change made through the API shows on an open page.
//
//	go run ./bench/console                # 10 loads of each page, 10,000 runners
//	go run ./bench/console --loads 30 --runners 0
//
// It starts a control plane in-process on 127.0.0.1 (SQLite in a temporary
// directory) and Debian's chromium (/usr/bin/chromium); nothing leaves the
// machine.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/runyard/runyard/bench/internal/report"
	"github.com/runyard/runyard/internal/server"
)

const token = "ryd_bench_console_admin_token_0123"

func main() {
	loads := flag.Int("loads", 10, "page loads measured per page (cache disabled, so each is a first load)")
	fleet := flag.Int("runners", 10000, "runners seeded for the runners page's part (0 skips it)")
	requests := flag.Int("requests", 50, "requests per page of the runners page's part")
	logMB := flag.Int("log-mb", 500, "MB of log the log view follows (0 skips the part)")
	logRate := flag.Float64("log-rate", 100, "MB/s the paced log is written at")
	live := flag.Int("live", 20, "changes per page of the live-update part (0 skips it)")
	chromium := flag.String("chromium", "/usr/bin/chromium", "the browser")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	short := report.Short()
	flag.Parse()
	if *short {
		*loads, *fleet, *requests, *logMB, *live = 1, 200, 3, 5, 2
	}
	if _, err := os.Stat(*chromium); err != nil {
		report.Skip("console", "every figure", "no browser at "+*chromium)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, *loads, *chromium, *fleet, *requests, int64(*logMB)*1e6, *logRate*1e6, *live); err != nil {
		fmt.Fprintln(os.Stderr, "bench/console:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, loads int, chromium string, fleet, requests int, logBytes int64, logRate float64, live int) error {
	dir, err := os.MkdirTemp("", "runyard-bench-console-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := server.Open(ctx, server.Config{
		Listen: "127.0.0.1:0", DataDir: dir, BootstrapToken: token,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx) }()
	defer func() { stop(); <-served }()

	// The baseline: a bare page, as small as a page gets, from net/http.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	bare := []byte("<!doctype html><html lang=en><head><meta charset=utf-8><title>bare</title></head><body><main><h1>bare</h1></main></body></html>")
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(bare)
	}))
	defer ln.Close()
	baseURL := "http://" + ln.Addr().String() + "/"

	var firstLoad [][2]any // page, gzipped bytes
	fmt.Printf("bench/console: %d first loads per page, headless %s, loopback\n", loads, chromium)
	for _, p := range []struct{ name, url string }{{"console /", srv.URL() + "/"}, {"console /runners", srv.URL() + "/runners"}, {"console /signin", srv.URL() + "/signin"}} {
		wire, gz, err := pageBytes(p.url)
		if err != nil {
			return err
		}
		fmt.Printf("%-22s first-load bytes (HTML+JS+CSS): %6d as served, %6d gzipped\n", p.name, wire, gz)
		firstLoad = append(firstLoad, [2]any{p.name, gz})
	}
	wire, gz, _ := pageBytes(baseURL)
	for _, fl := range firstLoad {
		t := report.AtMost(300)
		report.Emit(report.Figure{Bench: "console", Name: fl[0].(string) + " first load, gzipped", Value: float64(fl[1].(int)) / 1000, Unit: "KB",
			Baseline: float64(gz) / 1000, BaselineName: "bare page"}, &t)
	}
	fmt.Printf("%-22s first-load bytes (HTML):        %6d as served, %6d gzipped\n", "baseline bare page", wire, gz)
	if b, err := assetBytes(srv.URL(), "terminal"); err == nil {
		fmt.Printf("%-22s the pod page's terminal (xterm.js) adds: %d gzipped (loaded only there)\n", "", b)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-gpu", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	if err := chromedp.Do(bctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, t, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer " + token}})
		return err
	})); err != nil {
		return fmt.Errorf("start chromium: %w", err)
	}
	var bareTTI float64 // the first measured: the bare page
	measure := func(name, url, ready string) error {
		var tti, dcl []float64
		for range loads {
			if err := chromedp.Do(bctx, chromedp.Navigate("about:blank"), chromedp.Navigate(url)); err != nil {
				return err
			}
			if err := waitTrue(bctx, ready, 30*time.Second); err != nil {
				return fmt.Errorf("%s: not interactive: %w", name, err)
			}
			v, err := chromedp.Run(bctx, chromedp.Evaluate[[]float64](`(() => {
				const nav = performance.getEntriesByType("navigation")[0];
				const mark = performance.getEntriesByName("runyard-ready")[0];
				return [mark ? mark.startTime : nav.domInteractive, nav.domContentLoadedEventEnd];
			})()`))
			if err != nil {
				return err
			}
			tti, dcl = append(tti, v[0]), append(dcl, v[1])
		}
		fmt.Printf("%-22s time to interactive: p50 %6.1f ms  max %6.1f ms   (DOMContentLoaded p50 %6.1f ms)\n",
			name, pct(tti, 50), pct(tti, 100), pct(dcl, 50))
		if bareTTI == 0 {
			bareTTI = pct(tti, 50)
			return nil
		}
		t := report.AtMost(1000)
		report.Emit(report.Figure{Bench: "console", Name: name + " time to interactive, p50", Value: pct(tti, 50), Unit: "ms",
			Baseline: bareTTI, BaselineName: "bare page"}, &t)
		return nil
	}
	if err := measure("baseline bare page", baseURL, `document.readyState === "complete"`); err != nil {
		return err
	}
	for _, p := range []string{"/", "/runners", "/signin"} {
		if err := measure("console "+p, srv.URL()+p, `document.documentElement.dataset.ready === "true"`); err != nil {
			return err
		}
	}
	if live > 0 {
		if err := benchLive(ctx, bctx, srv.URL(), live); err != nil {
			return err
		}
	}
	if logBytes > 0 {
		if err := benchLogs(ctx, bctx, srv.URL(), logBytes, logRate); err != nil {
			return err
		}
	}
	if fleet > 0 {
		start := time.Now()
		if err := seedRunners(ctx, dir, fleet); err != nil {
			return err
		}
		fmt.Printf("seeded %d runners in %s\n", fleet, time.Since(start).Round(time.Millisecond))
		token, err := benchRunnersPage(ctx, srv.URL(), fleet, requests)
		if err != nil {
			return err
		}
		// In the browser: a page change is a load of the next page.
		for _, p := range []string{"/runners", "/runners?token=" + token, "/runners?name=runner-09999"} {
			if err := measure(fmt.Sprintf("%d: %s", fleet, p), srv.URL()+p, `document.documentElement.dataset.ready === "true"`); err != nil {
				return err
			}
		}
	}
	return nil
}

var linkRE = regexp.MustCompile(`(?:href|src)="(/console/assets/[^"]+)"`)

// pageBytes fetches a page and the assets it links, as a browser without a
// cache would, and returns their bytes as served and gzipped.
func pageBytes(url string) (wire, gz int, err error) {
	body, n, err := fetch(url, true)
	if err != nil {
		return 0, 0, err
	}
	wire, gz = n, gzipLen(body)
	base := url[:strings.Index(url[len("http://"):], "/")+len("http://")]
	for _, m := range linkRE.FindAllStringSubmatch(string(body), -1) {
		b, n, err := fetch(base+m[1], false)
		if err != nil {
			return 0, 0, err
		}
		wire += n
		gz += gzipLen(b)
	}
	return wire, gz, nil
}

func assetBytes(base, entry string) (int, error) {
	entries, err := os.ReadDir("internal/console/assets")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), entry+"-") && strings.HasSuffix(e.Name(), ".js") {
			b, _, err := fetch(base+"/console/assets/"+e.Name(), false)
			if err != nil {
				return 0, err
			}
			return gzipLen(b), nil
		}
	}
	return 0, fmt.Errorf("no %s asset", entry)
}

// fetch returns a body (decompressed) and the bytes that crossed the wire.
func fetch(url string, auth bool) ([]byte, int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		return nil, 0, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, 0, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET %s: %d", url, res.StatusCode)
	}
	body := raw
	if res.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, 0, err
		}
		if body, err = io.ReadAll(zr); err != nil {
			return nil, 0, err
		}
	}
	return body, len(raw), nil
}

func gzipLen(b []byte) int {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	zw.Write(b)
	zw.Close()
	return buf.Len()
}

func pct(v []float64, p int) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	i := (len(s) - 1) * p / 100
	return s[i]
}
