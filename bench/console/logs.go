package main

// This file is part 3: the console's log view following a log written at
// 100 MB/s (and as fast as it can), in headless Chromium: the page's island
// (app.js's startLog, as on the log page) reads the stream, keeps the last
// lines and draws once a frame. Beside it, in the same run, the same stream
// read by a page that discards it, and an OS pipe read in Go.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/runyard/runyard/bench/internal/report"
)

// logLine is what the writer repeats: 64 bytes with the newline.
const logLine = "runyard console log benchmark 0123456789abcdefghijklmnopqrstuvw\n"

const logPage = `<!doctype html><html lang=en><head><meta charset=utf-8><title>log</title></head><body><main>
<input id="log-search" aria-label="search"><input type="checkbox" id="log-follow" checked aria-label="follow">
<p id="log-status"></p><pre id="log" data-log-url="/stream"></pre></main>
<script type="module" src="/app.js"></script></body></html>`

const pipePage = `<!doctype html><html lang=en><head><meta charset=utf-8><title>pipe</title></head><body><main><p id="log-status"></p></main>
<script type="module" src="/pipe.js"></script></body></html>`

const pipeJS = `const r = await fetch("/stream?follow=1"); const rd = r.body.getReader(); let n = 0;
for (;;) { const { done, value } = await rd.read(); if (done) break; n += value.length; }
document.getElementById("log-status").textContent = "The run ended: " + n;`

// stallProbe records the longest gap between 10 ms timer ticks: how long
// the page's main thread was busy at a stretch (a frozen tab is a long gap).
const stallProbe = `window.__maxGap = 0; { let last = performance.now(); setInterval(() => {
	const now = performance.now(); window.__maxGap = Math.max(window.__maxGap, now - last); last = now }, 10) }`

// benchLogs serves the pages and the stream from a bare server and times
// each reader.
func benchLogs(ctx context.Context, bctx context.Context, consoleBase string, total int64, rate float64) error {
	home, _, err := fetch(consoleBase+"/", true)
	if err != nil {
		return err
	}
	var app []byte
	for _, m := range linkRE.FindAllStringSubmatch(string(home), -1) {
		if bytes.Contains([]byte(m[1]), []byte("/app-")) {
			if app, _, err = fetch(consoleBase+m[1], false); err != nil {
				return err
			}
		}
	}
	if app == nil {
		return fmt.Errorf("no app script on the console's overview")
	}
	chunk := bytes.Repeat([]byte(logLine), 1024) // 64 KiB
	var paced float64
	mux := http.NewServeMux()
	html := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, body)
		}
	}
	js := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript")
			w.Write(body)
		}
	}
	mux.Handle("/log", html(logPage))
	mux.Handle("/pipe", html(pipePage))
	mux.Handle("/app.js", js(app))
	mux.Handle("/pipe.js", js([]byte(pipeJS)))
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fl := w.(http.Flusher)
		start := time.Now()
		for sent := int64(0); sent < total; sent += int64(len(chunk)) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			fl.Flush()
			if paced > 0 {
				// Ahead of the rate: wait until the bytes are due.
				if due := start.Add(time.Duration(float64(sent+int64(len(chunk))) / paced * float64(time.Second))); time.Until(due) > 0 {
					time.Sleep(time.Until(due))
				}
			}
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go http.Serve(ln, mux)
	base := "http://" + ln.Addr().String()
	if err := chromedp.Do(bctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: stallProbe})
		return err
	})); err != nil {
		return err
	}
	fmt.Printf("== a log of %d MB followed in Chromium; MB = 10^6 bytes; stall = the longest the page's main thread was busy\n", total/1e6)
	var followed []report.Figure
	follow := func(name, path string, rate float64) error {
		paced = rate
		start := time.Now()
		if err := chromedp.Do(bctx, chromedp.Navigate(base+path)); err != nil {
			return err
		}
		if err := waitTrue(bctx, `document.getElementById("log-status").textContent.includes("ended")`, 5*time.Minute); err != nil {
			return fmt.Errorf("%s: the log did not end: %w", name, err)
		}
		d := time.Since(start)
		gap, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`window.__maxGap`))
		if err != nil {
			return err
		}
		shown, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`(document.getElementById("log")||{textContent:""}).textContent.length`))
		if err != nil {
			return err
		}
		fmt.Printf("%-40s %7.1f MB/s  (%5.2f s)  stall max %6.1f ms  text shown %8.0f chars\n", name, float64(total)/1e6/d.Seconds(), d.Seconds(), gap, shown)
		followed = append(followed, report.Figure{Bench: "console", Name: name + ", followed", Value: float64(total) / 1e6 / d.Seconds(), Unit: "MB/s",
			Count: gap, CountUnit: "ms longest stall"})
		return nil
	}
	writeRate := fmt.Sprintf("%.0f MB/s", rate/1e6)
	for _, r := range []struct {
		name, path string
		rate       float64
	}{
		{"page that discards it, written at " + writeRate, "/pipe", rate},
		{"console log view, written at " + writeRate, "/log", rate},
		{"page that discards it, written at full speed", "/pipe", 0},
		{"console log view, written at full speed", "/log", 0},
	} {
		if err := follow(r.name, r.path, r.rate); err != nil {
			return err
		}
	}
	// The OS pipe: the same bytes through yes | head, read in Go.
	cmd := exec.CommandContext(ctx, "sh", "-c", "yes '"+logLine[:len(logLine)-1]+"' | head -c "+strconv.FormatInt(total, 10))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, out)
	if err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil {
		return err
	}
	d := time.Since(start)
	fmt.Printf("%-40s %7.1f MB/s  (%5.2f s)\n", "baseline: an OS pipe read in Go", float64(n)/1e6/d.Seconds(), d.Seconds())
	for _, f := range followed {
		f.Baseline, f.BaselineName = float64(n)/1e6/d.Seconds(), "OS pipe"
		report.Emit(f, nil)
	}
	return nil
}
