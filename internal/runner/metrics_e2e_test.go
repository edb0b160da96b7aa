package runner_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/testutil"
)

// These tests run a real control plane, a real runner daemon and, for
// remote write, Debian's prometheus, all on loopback.

// call sends a JSON request with the admin key and decodes the answer.
func call(t *testing.T, method, u, body string) (int, []byte) {
	t.Helper()
	r, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+testutil.AdminToken)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func rpcJSON(t *testing.T, base, method, body string) map[string]any {
	t.Helper()
	code, b := call(t, http.MethodPost, base+"/gitpod.v1."+method, body)
	if code != http.StatusOK {
		t.Fatalf("%s: %d %s", method, code, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return m
}

// startRunnerFor creates a runner with configuration cfg (JSON) and starts
// its daemon; it returns the runner's ID and health address.
func startRunnerFor(t *testing.T, ts *testutil.TestServer, name, cfg string) (string, string) {
	t.Helper()
	res := rpcJSON(t, ts.URL, "RunnerService/CreateRunner", `{"name":"`+name+`","provider":"RUNNER_PROVIDER_LINUX_HOST","spec":{"configuration":`+cfg+`}}`)
	id := res["runner"].(map[string]any)["runnerId"].(string)
	addr := freeAddr(t)
	testutil.StartRunner(t, runner.Config{
		Server: ts.URL, ExchangeToken: res["exchangeToken"].(string), StateDir: filepath.Join(t.TempDir(), "state"), Name: name,
		Region: "test-region", MaxPods: 2, HealthAddr: addr, MetricsInterval: 200 * time.Millisecond, StopGrace: 2 * time.Second,
	})
	return id, addr
}

func getRunner(t *testing.T, base, id string) map[string]any {
	t.Helper()
	return rpcJSON(t, base, "RunnerService/GetRunner", `{"runnerId":"`+id+`"}`)["runner"].(map[string]any)
}

// prometheus is Debian's prometheus, started with its remote-write
// receiver and basic auth.
type prometheus struct {
	url, user, password string
}

func startPrometheus(t *testing.T) *prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("prometheus is not installed (.ci/run installs Debian's package): %v", err)
		}
		t.Skip("prometheus is not installed: apt-get install prometheus")
	}
	dir := t.TempDir()
	p := &prometheus{user: "pusher", password: "s3cret-push-password"}
	hash, err := bcrypt.GenerateFromPassword([]byte(p.password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte("global:\n  scrape_interval: 1h\n"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "web.yml"), []byte("basic_auth_users:\n  "+p.user+": "+string(hash)+"\n"), 0o600))
	addr := freeAddr(t)
	p.url = "http://" + addr
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--web.config.file="+filepath.Join(dir, "web.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--web.enable-remote-write-receiver")
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	must(err)
	cmd.Stdout, cmd.Stderr = logf, logf
	must(cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	eventually(t, "prometheus is ready", func() string {
		code, body := p.get(t, "/-/ready")
		if code != http.StatusOK {
			return fmt.Sprintf("%d %s", code, body)
		}
		return ""
	})
	return p
}

func (p *prometheus) get(t *testing.T, path string) (int, string) {
	r, _ := http.NewRequest(http.MethodGet, p.url+path, nil)
	r.SetBasicAuth(p.user, p.password)
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// query runs an instant PromQL query and returns the values of its series.
func (p *prometheus) query(t *testing.T, q string) ([]string, error) {
	code, body := p.get(t, "/api/v1/query?query="+url.QueryEscape(q))
	if code != http.StatusOK {
		return nil, fmt.Errorf("query %s: %d %s", q, code, body)
	}
	var res struct {
		Data struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		return nil, err
	}
	var out []string
	for _, r := range res.Data.Result {
		out = append(out, fmt.Sprint(r.Value[1]))
	}
	return out, nil
}

// scrape reads a /metrics page and returns the value of the series whose
// line starts with series ("" when absent).
func scrape(t *testing.T, u, series string) string {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		return ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return rest
		}
	}
	return ""
}

// TestRunnerMetrics_RemoteWrite configures a runner's metrics with a
// remote-write URL, username and password, and reads the runner's series
// back from a real Prometheus that requires that password: the password
// reached the runner (sealed to its key) and is shown by no API and in no
// log.
func TestRunnerMetrics_RemoteWrite(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			prom := startPrometheus(t)
			ts := testutil.StartServer(t, backend)
			id, health := startRunnerFor(t, ts, "metrics-push",
				`{"metrics":{"enabled":true,"url":"`+prom.url+`/api/v1/write","username":"`+prom.user+`","password":"`+prom.password+`"}}`)

			// The runner's own /metrics, on its health address.
			eventually(t, "the runner's /metrics shows its stream", func() string {
				if v := scrape(t, "http://"+health+"/metrics", "runyard_runner_stream_connected"); v != "1" {
					return "stream_connected = " + v
				}
				if v := scrape(t, "http://"+health+"/metrics", `runyard_runner_pods{state="running"}`); v != "0" {
					return "pods running = " + v
				}
				// Every update state has its series, the current one at 1.
				for state, want := range map[string]string{"idle": "1", "downloading": "0", "waiting-for-window": "0", "draining": "0", "restarting": "0", "failed": "0"} {
					if v := scrape(t, "http://"+health+"/metrics", `runyard_runner_update_state{state="`+state+`"}`); v != want {
						return fmt.Sprintf("update_state %s = %q, want %s", state, v, want)
					}
				}
				if v := scrape(t, "http://"+health+"/metrics", "runyard_runner_update_failures_total"); v != "0" {
					return "update_failures_total = " + v
				}
				return ""
			})
			eventually(t, "prometheus has the runner's series", func() string {
				vals, err := prom.query(t, `runyard_runner_stream_connected{runner="`+id+`",job="runyard-runner"}`)
				if err != nil {
					return err.Error()
				}
				if len(vals) != 1 || vals[0] != "1" {
					return fmt.Sprintf("values %v", vals)
				}
				vals, err = prom.query(t, `runyard_runner_work_processes{runner="`+id+`"}`)
				if err != nil || len(vals) != 1 {
					return fmt.Sprintf("work_processes %v %v", vals, err)
				}
				vals, err = prom.query(t, `runyard_runner_update_state{runner="`+id+`",state="idle"}`)
				if err != nil || len(vals) != 1 || vals[0] != "1" {
					return fmt.Sprintf("update_state idle %v %v", vals, err)
				}
				return ""
			})
			// The password is write-only: not in GetRunner, not in the
			// runner's log, not in its support bundle.
			r := getRunner(t, ts.URL, id)
			raw, _ := json.Marshal(r)
			if strings.Contains(string(raw), prom.password) {
				t.Fatalf("GetRunner shows the metrics password: %s", raw)
			}
			st := r["status"].(map[string]any)
			for _, u := range []string{st["logUrl"].(string), st["supportBundleUrl"].(string)} {
				code, body := call(t, http.MethodGet, u, "")
				if code != http.StatusOK {
					t.Fatalf("GET %s: %d %s", u, code, body)
				}
				if bytes.Contains(body, []byte(prom.password)) {
					t.Fatalf("%s holds the metrics password", u)
				}
				if strings.HasSuffix(u, "/log") && !bytes.Contains(body, []byte("metrics: pushing")) {
					t.Fatalf("the runner's log does not say where it pushes:\n%s", body)
				}
			}
		})
	}
}

// TestRunnerMetrics_Managed turns on managed metrics: the runner reports
// to the control plane, whose /metrics shows the runner's series with its
// ID as label runner, beside the control plane's own counts of
// environments and pods by phase and its counter of pod placements.
func TestRunnerMetrics_Managed(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts := testutil.StartServer(t, backend)
			id, _ := startRunnerFor(t, ts, "metrics-managed", `{"metrics":{"managedMetricsEnabled":true}}`)
			classes := rpcJSON(t, ts.URL, "EnvironmentService/ListEnvironmentClasses", `{"filter":{"runnerIds":["`+id+`"]}}`)["environmentClasses"].([]any)
			class := classes[0].(map[string]any)["id"].(string)
			env := rpcJSON(t, ts.URL, "EnvironmentService/CreateEnvironment", `{"spec":{"machine":{"class":"`+class+`"}}}`)["environment"].(map[string]any)["id"].(string)
			svc := rpcJSON(t, ts.URL, "EnvironmentAutomationService/CreateService",
				`{"environmentId":"`+env+`","metadata":{"reference":"web","name":"web"},"spec":{"commands":{"start":"exec sleep 600"}}}`)
			rpcJSON(t, ts.URL, "EnvironmentAutomationService/StartService", `{"id":"`+svc["service"].(map[string]any)["id"].(string)+`"}`)
			// An agent type no runner has: its pod waits.
			rest := ts.URL + "/api/v1/orgs/default"
			if code, b := call(t, http.MethodPost, rest+"/agents", `{"id":"nowhere-agent","name":"Nowhere","command":["runyard-no-such-agent"]}`); code != http.StatusCreated {
				t.Fatalf("create agent type: %d %s", code, b)
			}
			if code, b := call(t, http.MethodPost, rest+"/pods", `{"agent_type_id":"nowhere-agent","initial_prompt":"x"}`); code != http.StatusCreated {
				t.Fatalf("create pod: %d %s", code, b)
			}
			eventually(t, "the control plane's /metrics shows the runner's metrics and its counts", func() string {
				for series, want := range map[string]string{
					`runyard_runner_stream_connected{runner="` + id + `"}`:             "1",
					`runyard_runner_environments{phase="running",runner="` + id + `"}`: "1",
					`runyard_environments{phase="running"}`:                            "1",
					`runyard_services{phase="running"}`:                                "1",
					`runyard_runner_services{phase="running",runner="` + id + `"}`:     "1",
					`runyard_runner_update_state{runner="` + id + `",state="idle"}`:    "1",
					`runyard_runner_update_failures_total{runner="` + id + `"}`:        "0",
					`runyard_pods{status="pending"}`:                                   "1",
					`runyard_pods_pending{reason="agent_type_missing"}`:                "1",
					`runyard_runners_connected`:                                        "1",
				} {
					if got := scrape(t, ts.URL+"/metrics", series); got != want {
						return fmt.Sprintf("%s = %q, want %s", series, got, want)
					}
				}
				return ""
			})

			// Placements: the waiting pod counted none. Three pods of an
			// agent type the runner has, on a runner that takes two: two
			// are placed, the third when one of them ended.
			if v := scrape(t, ts.URL+"/metrics", "runyard_pod_placements_total"); v != "0" {
				t.Fatalf("runyard_pod_placements_total = %q with no pod placed, want 0", v)
			}
			if code, b := call(t, http.MethodPost, rest+"/agents", `{"id":"sleeper","name":"Sleeper","command":["sh","-c","exec sleep 600"]}`); code != http.StatusCreated {
				t.Fatalf("create agent type: %d %s", code, b)
			}
			eventually(t, "the runner runs agents", func() string {
				if caps := fmt.Sprint(getRunner(t, ts.URL, id)["status"].(map[string]any)["capabilities"]); caps != "[RUNNER_CAPABILITY_AGENT_EXECUTION]" {
					return caps
				}
				return ""
			})
			type podJSON struct {
				Pod struct {
					Key      string `json:"key"`
					RunnerID *int64 `json:"runner_id"`
				} `json:"pod"`
			}
			var keys []string
			for range 3 {
				code, b := call(t, http.MethodPost, rest+"/pods", `{"agent_type_id":"sleeper","initial_prompt":"x"}`)
				var p podJSON
				if code != http.StatusCreated || json.Unmarshal(b, &p) != nil {
					t.Fatalf("create pod: %d %s", code, b)
				}
				keys = append(keys, p.Pod.Key)
			}
			eventually(t, "two pods placed, one waits for room", func() string {
				for series, want := range map[string]string{
					`runyard_pod_placements_total`:                "2",
					`runyard_pods_placed`:                         "2",
					`runyard_pods_pending{reason="runners_full"}`: "1",
				} {
					if got := scrape(t, ts.URL+"/metrics", series); got != want {
						return fmt.Sprintf("%s = %q, want %s", series, got, want)
					}
				}
				return ""
			})
			var placed string
			for _, k := range keys {
				code, b := call(t, http.MethodGet, rest+"/pods/"+k, "")
				var p podJSON
				if code != http.StatusOK || json.Unmarshal(b, &p) != nil {
					t.Fatalf("get pod: %d %s", code, b)
				}
				if p.Pod.RunnerID != nil {
					placed = k
				}
			}
			if code, b := call(t, http.MethodPost, rest+"/pods/"+placed+"/terminate", ""); code != http.StatusOK {
				t.Fatalf("terminate pod: %d %s", code, b)
			}
			eventually(t, "the waiting pod is placed when one ended", func() string {
				for series, want := range map[string]string{
					`runyard_pod_placements_total`:   "3",
					`runyard_pods_placed`:            "2",
					`runyard_pods{status="running"}`: "2",
				} {
					if got := scrape(t, ts.URL+"/metrics", series); got != want {
						return fmt.Sprintf("%s = %q, want %s", series, got, want)
					}
				}
				return ""
			})

			// A runner's periodic report is no call a person makes: the
			// audit log records none.
			audit := rpcJSON(t, ts.URL, "EventService/ListAuditLogs", `{"filter":{"methods":["runyard.runner.v1.RunnerControlService/ReportRunnerMetrics"]}}`)
			if entries, _ := audit["entries"].([]any); len(entries) != 0 {
				t.Errorf("the audit log records metrics reports: %v", entries)
			}
		})
	}
}

// TestRunnerStatusFields checks what a connected runner's status carries:
// its own log and a support bundle behind logUrl and supportBundleUrl, the
// gateway it is connected to with a measured latency, its host's facts, and
// only the capabilities it has.
func TestRunnerStatusFields(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts := testutil.StartServer(t, backend)
			id, health := startRunnerFor(t, ts, "status-fields", `{}`)
			var st map[string]any
			eventually(t, "the runner reports a measured latency", func() string {
				st = getRunner(t, ts.URL, id)["status"].(map[string]any)
				gw, _ := st["gatewayInfo"].(map[string]any)
				if gw == nil || gw["latency"] == nil {
					return fmt.Sprintf("gatewayInfo %v", st["gatewayInfo"])
				}
				return ""
			})
			gw := st["gatewayInfo"].(map[string]any)
			g := gw["gateway"].(map[string]any)
			if g["url"] != ts.URL || g["region"] != "test-region" || g["name"] != strings.TrimPrefix(ts.URL, "http://") {
				t.Errorf("gateway = %v, want %s in test-region", g, ts.URL)
			}
			if lat, err := time.ParseDuration(gw["latency"].(string)); err != nil || lat <= 0 {
				t.Errorf("latency = %v (%v)", gw["latency"], err)
			}
			facts := map[string]string{}
			for _, kv := range st["additionalInfo"].([]any) {
				m := kv.(map[string]any)
				facts[m["key"].(string)] = m["value"].(string)
			}
			for _, k := range []string{"kernel", "cpus", "memoryBytes", "stateDirFreeBytes", "containerEngine"} {
				if facts[k] == "" {
					t.Errorf("additionalInfo lacks %s: %v", k, facts)
				}
			}
			// No agent binary on this host's PATH: no agent execution.
			if caps, _ := st["capabilities"].([]any); len(caps) != 0 {
				t.Errorf("capabilities = %v, want none", caps)
			}
			if code, b := call(t, http.MethodPost, ts.URL+"/api/v1/orgs/default/agents", `{"id":"sh-agent","name":"Sh","command":["sh","-c","exec sleep 600"]}`); code != http.StatusCreated {
				t.Fatalf("create agent type: %d %s", code, b)
			}
			eventually(t, "an agent binary brings agent execution", func() string {
				caps := fmt.Sprint(getRunner(t, ts.URL, id)["status"].(map[string]any)["capabilities"])
				if caps != "[RUNNER_CAPABILITY_AGENT_EXECUTION]" {
					return caps
				}
				return ""
			})

			// A pod is work: its holder and its process show in the
			// runner's metrics, with what they use.
			if code, b := call(t, http.MethodPost, ts.URL+"/api/v1/orgs/default/pods", `{"agent_type_id":"sh-agent","initial_prompt":"x"}`); code != http.StatusCreated {
				t.Fatalf("create pod: %d %s", code, b)
			}
			eventually(t, "the runner's metrics count the pod and its processes", func() string {
				m := "http://" + health + "/metrics"
				pods, holders, procs, rss := scrape(t, m, `runyard_runner_pods{state="running"}`), scrape(t, m, "runyard_runner_work_holders"),
					scrape(t, m, "runyard_runner_work_processes"), scrape(t, m, "runyard_runner_work_resident_memory_bytes")
				if pods != "1" || holders != "1" || procs != "2" || rss == "0" || rss == "" {
					return fmt.Sprintf("pods %s holders %s processes %s rss %s", pods, holders, procs, rss)
				}
				return ""
			})

			if want := ts.URL + "/runners/" + id + "/log"; st["logUrl"] != want {
				t.Fatalf("logUrl = %v, want %s", st["logUrl"], want)
			}
			code, log := call(t, http.MethodGet, st["logUrl"].(string), "")
			if code != http.StatusOK || !bytes.Contains(log, []byte("connected to the control plane")) {
				t.Fatalf("GET logUrl: %d %s", code, log)
			}
			code, bundle := call(t, http.MethodGet, st["supportBundleUrl"].(string), "")
			if code != http.StatusOK {
				t.Fatalf("GET supportBundleUrl: %d %s", code, bundle)
			}
			files := untar(t, bundle)
			for _, name := range []string{"version.json", "config.json", "health.json", "goroutines.txt", "runner.log", "metrics.txt", "state-dir.txt"} {
				if len(files[name]) == 0 {
					t.Errorf("the support bundle lacks %s (has %v)", name, keys(files))
				}
			}
			if !strings.Contains(files["goroutines.txt"], "goroutine ") || !strings.Contains(files["state-dir.txt"], "credentials.json") {
				t.Errorf("goroutines or state-dir listing look wrong:\n%.500s\n%.500s", files["goroutines.txt"], files["state-dir.txt"])
			}
			if strings.Contains(files["config.json"], "ryd_") || strings.Contains(files["state-dir.txt"], "ryd_") {
				t.Errorf("the support bundle holds a token")
			}
		})
	}
}

func untar(t *testing.T, b []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("support bundle: %v", err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("support bundle: %v", err)
		}
		body, _ := io.ReadAll(tr)
		out[h.Name] = string(body)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
