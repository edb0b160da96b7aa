// Command autoupdate measures the time from `releases publish` to N
// simulated runners reporting the new version inside their update window.
// It builds runyard, starts a control plane (`runyard server`, its own
// process, SQLite in a temporary directory, --release-public-key) on
// loopback, connects --runners simulated runners (the runner protocol over
// h2c, version v1, autoUpdate on stable, a window holding the current UTC
// hour), publishes a signed release v2 with an archive of --archive-size
// bytes, and waits until ListRunners shows every runner on v2. Each
// simulated runner does what a daemon does on the wire: it takes the
// desired state's update, downloads the archive with its token, checks the
// signature (its own trusted key) and SHA-256, and reconnects reporting v2
// (a real daemon's exec and re-adoption are measured by the e2e tests, not
// here). Printed beside it, from the same run: a bare loopback HTTP round
// trip, and the same N downloads made at once without a publish. Its
// figures go to bench/all through bench/internal/report.
//
//	go run ./bench/autoupdate --runners 100
//	go run ./bench/autoupdate --short     # 5 runners, a 256 KiB archive
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/runyard/runyard/bench/internal/report"
	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/gen/runyard/runner/v1/runnerv1connect"
	"github.com/runyard/runyard/internal/release"
)

const adminToken = "ryd_bench_autoupdate_admin_token_0123456789abc"

func main() {
	n := flag.Int("runners", 100, "simulated runners")
	size := flag.Int("archive-size", 4<<20, "bytes of the release archive's binary")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	short := report.Short()
	flag.Parse()
	if *short {
		*n, *size = 5, 256<<10
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, *n, *size); err != nil {
		fmt.Fprintln(os.Stderr, "autoupdate:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n, size int) error {
	dir, err := os.MkdirTemp("", "bench-autoupdate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := report.RunyardBinary(dir)
	if err != nil {
		return err
	}
	key, err := release.GenerateKey()
	if err != nil {
		return err
	}
	pub := key.Public().(release.PublicKey)
	pubPEM, _ := release.MarshalPublicKey(pub)
	pubFile := filepath.Join(dir, "release-public-key.pem")
	if err := os.WriteFile(pubFile, pubPEM, 0o644); err != nil {
		return err
	}
	fake := filepath.Join(dir, "v2-binary")
	blob := make([]byte, size)
	rand.Read(blob)
	if err := os.WriteFile(fake, blob, 0o755); err != nil {
		return err
	}
	rel := filepath.Join(dir, "rel")
	if _, err := release.Package(rel, release.Manifest{Version: "v2"}, map[release.Target]string{{OS: "linux", Arch: "amd64"}: fake}, key); err != nil {
		return err
	}

	addr := freeAddr()
	base := "http://" + addr
	srv := exec.CommandContext(ctx, bin, "server", "--listen", addr, "--data-dir", filepath.Join(dir, "cp"), "--release-public-key", pubFile)
	srv.Env = append(os.Environ(), "RUNYARD_BOOTSTRAP_TOKEN="+adminToken)
	log, _ := os.Create(filepath.Join(dir, "server.log"))
	srv.Stdout, srv.Stderr = log, log
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if err := waitOK(ctx, base+"/healthz"); err != nil {
		return err
	}

	// Baseline 1: a bare loopback round trip.
	var rtts []time.Duration
	for range 200 {
		t0 := time.Now()
		res, err := http.Get(base + "/healthz")
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		rtts = append(rtts, time.Since(t0))
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	rtt := rtts[len(rtts)/2].Round(time.Microsecond)
	fmt.Printf("baseline: loopback HTTP round trip (GET /healthz) p50 %v\n", rtt)

	hour := time.Now().UTC().Hour()
	sims := &fleet{pub: pub, base: base, done: make(chan struct{})}
	for i := range n {
		res := rpc(ctx, base, "RunnerService/CreateRunner", fmt.Sprintf(`{"name":"sim-%d","provider":"RUNNER_PROVIDER_LINUX_HOST",
			"spec":{"configuration":{"autoUpdate":true,"releaseChannel":"RUNNER_RELEASE_CHANNEL_STABLE","updateWindow":{"startHour":%d}}}}`, i, hour))
		ex, err := gitpodv1connect.NewIdentityServiceClient(http.DefaultClient, base).ExchangeToken(ctx,
			connect.NewRequest(&gitpodv1.ExchangeTokenRequest{ExchangeToken: dig(res, "exchangeToken")}))
		if err != nil {
			return fmt.Errorf("exchange: %w", err)
		}
		sims.tokens = append(sims.tokens, ex.Msg.GetAccessToken())
	}
	sims.start(ctx)
	for sims.connected.Load() < int64(n) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	// The control plane's memory with every runner connected, before any
	// archive is stored or downloaded: the RSS figure's baseline.
	rssBefore := statusKiB(srv.Process.Pid, "VmRSS")

	// Baseline 2 needs the release on the control plane: publish it to
	// latest (no runner follows latest), download it N times at once.
	if _, err := publish(ctx, base, "latest", rel); err != nil {
		return err
	}
	archive := release.ArchiveName("v2", release.Target{OS: "linux", Arch: "amd64"})
	t0 := time.Now()
	var wg sync.WaitGroup
	var dlErr atomic.Value
	for _, tok := range sims.tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := download(ctx, base+"/runner/v1/releases/latest/"+archive, tok); err != nil {
				dlErr.Store(err)
			}
		}()
	}
	wg.Wait()
	if e, ok := dlErr.Load().(error); ok {
		return e
	}
	bareDownloads := time.Since(t0)
	fmt.Printf("baseline: %d concurrent downloads of a %d-byte archive: %v\n", n, size, bareDownloads.Round(time.Millisecond))

	// The figure: publish to stable -> every runner on v2 per ListRunners.
	t0 = time.Now()
	if _, err := publish(ctx, base, "stable", rel); err != nil {
		return err
	}
	published := time.Since(t0)
	for ctx.Err() == nil {
		if onV2(ctx, base) >= n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	total := time.Since(t0)
	if ctx.Err() != nil {
		return fmt.Errorf("not every runner reported v2: %d of %d (errors %d)", onV2(context.Background(), base), n, sims.errors.Load())
	}
	fmt.Printf("releases publish -> %d runners report v2 in their window: %v (publish call %v; %d simulated downloads verified, %d errors)\n",
		n, total.Round(time.Millisecond), published.Round(time.Millisecond), sims.verified.Load(), sims.errors.Load())
	rssAfter := statusKiB(srv.Process.Pid, "VmRSS")
	fmt.Printf("control plane RSS after: %d KiB (runners connected, before any download: %d KiB)\n", rssAfter, rssBefore)
	// The peak counts the publishes too, which hold the uploaded release
	// directory in memory (twice here: latest, then stable).
	fmt.Printf("control plane peak RSS (VmHWM): %d KiB\n", statusKiB(srv.Process.Pid, "VmHWM"))
	close(sims.done)

	report.Emit(report.Figure{Bench: "autoupdate", Name: fmt.Sprintf("releases publish -> %d runners on v2", n), Value: ms(total), Unit: "ms",
		Baseline: ms(bareDownloads), BaselineName: fmt.Sprintf("%d downloads at once, no publish", n),
		Count: float64(sims.errors.Load()), CountUnit: "download errors"}, nil)
	report.Emit(report.Figure{Bench: "autoupdate", Name: "control plane RSS after the update", Value: float64(rssAfter), Unit: "KiB",
		Baseline: float64(rssBefore), BaselineName: "before any download"}, nil)
	return nil
}

type fleet struct {
	pub       release.PublicKey
	base      string
	tokens    []string
	connected atomic.Int64
	verified  atomic.Int64
	errors    atomic.Int64
	done      chan struct{}
}

func (f *fleet) start(ctx context.Context) {
	for _, tok := range f.tokens {
		go f.runner(ctx, tok)
	}
}

// runner is one simulated runner: connected as v1 until a desired state
// names another version, then it downloads and verifies the archive and
// connects again as that version.
func (f *fleet) runner(ctx context.Context, token string) {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	client := runnerv1connect.NewRunnerControlServiceClient(&http.Client{Transport: &http.Transport{Protocols: p}}, f.base)
	version := "v1"
	first := true
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		stream := client.Connect(sctx)
		stream.RequestHeader().Set("Authorization", "Bearer "+token)
		if err := stream.Send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: &runnerv1.Status{
			Version: version, Os: "linux", Arch: "amd64", Hostname: "sim", PublicKey: make([]byte, 32),
			Components: []*runnerv1.Component{{Name: "runner", Health: runnerv1.Health_HEALTH_HEALTHY}},
		}}}); err != nil {
			f.errors.Add(1)
			cancel()
			return
		}
		if first {
			f.connected.Add(1)
			first = false
		}
		var next string
		for {
			m, err := stream.Receive()
			if err != nil {
				break
			}
			u := m.GetDesired().GetUpdate()
			if u == nil || u.GetVersion() == version {
				continue
			}
			if u.GetHasWindow() && !inWindow(time.Now().UTC().Hour(), int(u.GetStartHour()), int(u.GetEndHour())) {
				continue
			}
			b, err := download(ctx, f.base+u.GetDownloadPath(), token)
			if err == nil {
				err = verify(b, u, f.pub)
			}
			if err != nil {
				f.errors.Add(1)
				continue
			}
			f.verified.Add(1)
			next = u.GetVersion()
			break
		}
		stream.CloseRequest()
		cancel()
		if next == "" {
			if ctx.Err() == nil {
				time.Sleep(200 * time.Millisecond)
			}
			continue
		}
		version = next
		// Connected as v2, it stays until the run ends.
		sctx, cancel = context.WithCancel(ctx)
		stream = client.Connect(sctx)
		stream.RequestHeader().Set("Authorization", "Bearer "+token)
		if err := stream.Send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: &runnerv1.Status{
			Version: version, Os: "linux", Arch: "amd64", Hostname: "sim", PublicKey: make([]byte, 32),
			Components: []*runnerv1.Component{{Name: "runner", Health: runnerv1.Health_HEALTH_HEALTHY}},
		}}}); err != nil {
			f.errors.Add(1)
		}
		go func() {
			for {
				if _, err := stream.Receive(); err != nil {
					return
				}
			}
		}()
		select {
		case <-ctx.Done():
		case <-f.done:
		}
		cancel()
		return
	}
}

func inWindow(h, start, end int) bool {
	if start == end {
		return true
	}
	if start < end {
		return h >= start && h < end
	}
	return h >= start || h < end
}

func verify(b []byte, u *runnerv1.RunnerUpdate, pub release.PublicKey) error {
	want, err := release.VerifySums(u.GetSums(), u.GetSumsSignature(), pub)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != want[u.GetArchive()] {
		return fmt.Errorf("SHA-256 %s, signed %s", got, want[u.GetArchive()])
	}
	return nil
}

func download(ctx context.Context, u, token string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download: %s %s", res.Status, b)
	}
	return b, err
}

func publish(ctx context.Context, base, channel, dir string) ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		w, _ := mw.CreateFormFile("file", e.Name())
		w.Write(b)
	}
	mw.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/releases/"+channel, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("publish: %s %s", res.Status, b)
	}
	return b, nil
}

// onV2 counts the runners ListRunners shows on v2.
func onV2(ctx context.Context, base string) int {
	count := 0
	page := ""
	for {
		m := rpc(ctx, base, "RunnerService/ListRunners", fmt.Sprintf(`{"pagination":{"pageSize":100,"token":%q}}`, page))
		rs, _ := m["runners"].([]any)
		for _, r := range rs {
			st, _ := r.(map[string]any)["status"].(map[string]any)
			if st["version"] == "v2" {
				count++
			}
		}
		p, _ := m["pagination"].(map[string]any)
		page, _ = p["nextToken"].(string)
		if page == "" {
			return count
		}
	}
}

func rpc(ctx context.Context, base, method, body string) map[string]any {
	r, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/gitpod.v1."+method, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+adminToken)
	r.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		panic(fmt.Sprintf("%s: %v", method, err))
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		panic(fmt.Sprintf("%s: %d %s", method, res.StatusCode, b))
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}

func dig(m map[string]any, path ...string) string {
	var v any = m
	for _, p := range path {
		v = v.(map[string]any)[p]
	}
	s, _ := v.(string)
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// statusKiB reads a field of /proc/PID/status in KiB: VmRSS, the resident
// memory now, or VmHWM, its peak.
func statusKiB(pid int, field string) int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			v, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return v
		}
	}
	return 0
}

func waitOK(ctx context.Context, u string) error {
	for ctx.Err() == nil {
		if res, err := http.Get(u); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200", u)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
