package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeFleet struct{ connected, renewals atomic.Int64 }

func (f *fakeFleet) Connected() int64       { return f.connected.Load() }
func (f *fakeFleet) Renewals() int64        { return f.renewals.Load() }
func (f *fakeFleet) TerminalStreams() int64 { return 0 }
func (f *fakeFleet) LogConnections() int64  { return 0 }

// newTestServer serves a mux with a few patterns through the middleware.
func newTestServer(t *testing.T, m *Metrics) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such item", http.StatusNotFound)
	})
	mux.HandleFunc("POST /svc.v1.Service/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("GET /silent", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			http.Error(w, "no flusher", http.StatusInternalServerError)
			return
		}
		// ResponseController must reach the real writer through Unwrap.
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		io.WriteString(w, "second\n")
	})
	mux.HandleFunc("GET /upgrade", func(w http.ResponseWriter, r *http.Request) {
		// As rawconn.Accept does: the 101 goes on the connection itself.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
		conn.Close()
	})
	mux.Handle("GET /metrics", m.Handler())
	srv := httptest.NewServer(m.Middleware(mux))
	t.Cleanup(srv.Close)
	return srv
}

func mustDo(t *testing.T, method, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

func TestMiddleware(t *testing.T) {
	m := New(nil)
	srv := newTestServer(t, m)

	mustDo(t, "GET", srv.URL+"/healthz")
	mustDo(t, "GET", srv.URL+"/healthz")
	mustDo(t, "GET", srv.URL+"/items/1")
	mustDo(t, "GET", srv.URL+"/items/2")
	mustDo(t, "POST", srv.URL+"/svc.v1.Service/Method")
	mustDo(t, "GET", srv.URL+"/silent")
	mustDo(t, "GET", srv.URL+"/no/such/path")
	mustDo(t, "GET", srv.URL+"/another/unknown")
	mustDo(t, "BREW", srv.URL+"/healthz")
	if res := mustDo(t, "GET", srv.URL+"/stream"); res.StatusCode != http.StatusOK {
		t.Fatalf("stream: status %d, want 200 (the wrapper must keep Flusher and Unwrap)", res.StatusCode)
	}

	up, err := http.NewRequest("GET", srv.URL+"/upgrade", nil)
	if err != nil {
		t.Fatal(err)
	}
	up.Header.Set("Connection", "Upgrade")
	up.Header.Set("Upgrade", "test")
	if res, err := http.DefaultClient.Do(up); err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v; want 101 (the wrapper must let the handler hijack)", res, err)
	} else {
		res.Body.Close()
	}

	for _, tt := range []struct {
		name                string
		method, route, code string
		want                float64
	}{
		{"OK", "GET", "/healthz", "200", 2},
		{"PathValuesShareTheirPattern", "GET", "/items/{id}", "404", 2},
		{"ServicePrefix", "POST", "/svc.v1.Service/", "202", 1},
		{"NothingWrittenIs200", "GET", "/silent", "200", 1},
		{"UnknownPathsShareOneSeries", "GET", "unmatched", "404", 2},
		{"UnknownMethodIsOther", "other", "unmatched", "405", 1},
		{"Stream", "GET", "/stream", "200", 1},
		{"UpgradeIs101", "GET", "/upgrade", "101", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := m.requests.GetMetricWithLabelValues(tt.method, tt.route, tt.code)
			if err != nil {
				t.Fatal(err)
			}
			if got := testutil.ToFloat64(c); got != tt.want {
				t.Errorf("requests{method=%q,route=%q,code=%q} = %v, want %v", tt.method, tt.route, tt.code, got, tt.want)
			}
		})
	}
	t.Run("NoRawPaths", func(t *testing.T) {
		body := scrape(t, srv.URL)
		for _, p := range []string{"/items/1", "/no/such/path", "/svc.v1.Service/Method", "BREW"} {
			if strings.Contains(body, p) {
				t.Errorf("metrics mention %q: a raw path or method must never be a label", p)
			}
		}
	})
	t.Run("Histogram", func(t *testing.T) {
		body := scrape(t, srv.URL)
		if !strings.Contains(body, `runyard_http_request_duration_seconds_count{method="GET",route="/healthz"} 2`) {
			t.Errorf("no duration count for GET /healthz in:\n%s", grep(body, "runyard_http_request_duration_seconds_count"))
		}
	})
}

func TestNew_Fleet(t *testing.T) {
	f := &fakeFleet{}
	m := New(f)
	srv := newTestServer(t, m)
	f.connected.Store(3)
	f.renewals.Store(41)
	body := scrape(t, srv.URL)
	for _, want := range []string{
		"runyard_runners_connected 3\n",
		"runyard_runner_renewals_total 41\n",
		"# TYPE runyard_runners_connected gauge",
		"# TYPE runyard_runner_renewals_total counter",
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	f.renewals.Add(1)
	if body := scrape(t, srv.URL); !strings.Contains(body, "runyard_runner_renewals_total 42\n") {
		t.Errorf("renewals did not follow the fleet:\n%s", grep(body, "runyard_runner"))
	}
}

type fakePlacer struct{ n atomic.Int64 }

func (p *fakePlacer) Placements() int64 { return p.n.Load() }

// TestAddPlacements: the placements counter reads the pods service on each
// scrape.
func TestAddPlacements(t *testing.T) {
	p := &fakePlacer{}
	m := New(nil)
	m.AddPlacements(p)
	srv := newTestServer(t, m)
	body := scrape(t, srv.URL)
	for _, want := range []string{"# TYPE runyard_pod_placements_total counter", "runyard_pod_placements_total 0\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, grep(body, "runyard_pod"))
		}
	}
	p.n.Add(3)
	if body := scrape(t, srv.URL); !strings.Contains(body, "runyard_pod_placements_total 3\n") {
		t.Errorf("placements did not follow the service:\n%s", grep(body, "runyard_pod"))
	}
}

// TestNew_SeparateRegistries checks that two servers in one process each have
// their own registry: registering twice in the default one would panic.
func TestNew_SeparateRegistries(t *testing.T) {
	a, b := &fakeFleet{}, &fakeFleet{}
	a.connected.Store(1)
	b.connected.Store(2)
	ma, mb := New(a), New(b)
	if got := scrape(t, newTestServer(t, ma).URL); !strings.Contains(got, "runyard_runners_connected 1\n") {
		t.Errorf("first server: %s", grep(got, "runyard_runners_connected"))
	}
	if got := scrape(t, newTestServer(t, mb).URL); !strings.Contains(got, "runyard_runners_connected 2\n") {
		t.Errorf("second server: %s", grep(got, "runyard_runners_connected"))
	}
}

func TestRouteLabel(t *testing.T) {
	for pattern, want := range map[string]string{
		"":                          "unmatched",
		"GET /healthz":              "/healthz",
		"/gitpod.v1.RunnerService/": "/gitpod.v1.RunnerService/",
		"POST example.com/x":        "example.com/x",
	} {
		if got := routeLabel(pattern); got != want {
			t.Errorf("routeLabel(%q) = %q, want %q", pattern, got, want)
		}
	}
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", res.StatusCode, b)
	}
	return string(b)
}

func grep(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
