package main

// Tests of the CLI's behaviour as a whole: unknown commands at every level
// (from the command tree, so new commands are covered without a new line
// here), where credentials go (contexts, login, ./.runyard/admin-token),
// output formats, confirmation of destructive commands and Ctrl-C during
// --wait.

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/cli"
)

// commandPaths walks the command tree and returns every visible command's
// path below the root (nil is the root itself).
func commandPaths() [][]string {
	var out [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		out = append(out, path)
		for _, sub := range c.Commands() {
			if sub.Hidden || strings.HasPrefix(sub.Name(), "__") {
				continue
			}
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(cli.NewRootCommand(), nil)
	return out
}

// findCommand returns the command at path.
func findCommand(t *testing.T, path []string) *cobra.Command {
	t.Helper()
	c, rest, err := cli.NewRootCommand().Find(path)
	if err != nil || len(rest) > 0 {
		t.Fatalf("find %v: %v (rest %v)", path, err, rest)
	}
	return c
}

func TestCLI_UnknownEverywhere(t *testing.T) {
	t.Parallel()
	paths := commandPaths()
	if len(paths) < 40 {
		t.Fatalf("the command tree has %d commands, want the whole CLI", len(paths))
	}
	for _, path := range paths {
		name := "runyard " + strings.Join(path, " ")
		t.Run(strings.Join(append([]string{"root"}, path...), "_"), func(t *testing.T) {
			t.Parallel()
			c := findCommand(t, path)
			// No server is contacted: every case fails before a call.
			env := []string{"RUNYARD_SERVER=http://127.0.0.1:1"}
			r := runCLI(t, "", env, append(append([]string(nil), path...), "--no-such-flag")...)
			requireOneLineError(t, r, 2, "unknown flag: --no-such-flag", "--help")

			// A command that takes no arguments refuses one as an unknown
			// command; one that takes an ID would read it as the ID.
			if c.Args != nil && c.Args(c, []string{"nosuchcmd"}) == nil {
				return
			}
			r = runCLI(t, "", env, append(append([]string(nil), path...), "nosuchcmd")...)
			if c.HasSubCommands() || c.Args == nil || c.Args(c, nil) == nil {
				requireOneLineError(t, r, 2, `unknown command "nosuchcmd" for "`+strings.TrimSpace(name)+`"`)
			} else {
				requireOneLineError(t, r, 2)
			}

			if c.Annotations["runyard/group"] == "true" {
				// A group without a subcommand shows its help and succeeds.
				r = runCLI(t, "", env, path...)
				if r.Code != 0 || !strings.Contains(r.Stdout, "Available Commands") {
					t.Errorf("%s: exit %d, stdout %q; want its help and 0", name, r.Code, r.Stdout)
				}
			}
		})
	}
}

func TestCLI_Suggestion(t *testing.T) {
	t.Parallel()
	r := runCLI(t, "", nil, "runners", "lst")
	requireOneLineError(t, r, 2, `unknown command "lst" for "runyard runners"`, "Did you mean this?", "list")
	r = runCLI(t, "", nil, "tokens", "delete", "x")
	requireOneLineError(t, r, 2, `unknown command "delete" for "runyard tokens"`)
	r = runCLI(t, "", nil, "help", "runners", "lst")
	requireOneLineError(t, r, 2, `unknown command "lst" for "runyard runners"`)
}

func TestCLI_EveryCommandHasAnExample(t *testing.T) {
	t.Parallel()
	for _, path := range commandPaths() {
		c := findCommand(t, path)
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("runyard %s --help has no example", strings.Join(path, " "))
		}
	}
}

// fakeServer is an HTTP server on loopback that is not runyard: it records
// the Authorization header of every request and answers each with answer.
type fakeServer struct {
	URL    string
	mu     sync.Mutex
	auth   []string
	answer func(w http.ResponseWriter, r *http.Request)
}

func startFakeServer(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{URL: "http://" + ln.Addr().String(), answer: answer}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		f.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		f.answer(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return f
}

// requests returns the Authorization headers received so far ("" for none).
func (f *fakeServer) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.auth...)
}

// unauthenticated answers like a Connect server to a request without a key.
func unauthenticated(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	io.WriteString(w, `{"code":"unauthenticated","message":"authentication required"}`)
}

// requireNoCredential checks that the fake server got at least one request
// and none of them carried an Authorization header.
func requireNoCredential(t *testing.T, what string, f *fakeServer, before int) {
	t.Helper()
	got := f.requests()[before:]
	if len(got) == 0 {
		t.Errorf("%s: the other server got no request", what)
	}
	for _, a := range got {
		if a != "" {
			t.Errorf("%s: the other server received Authorization %q, want none", what, a)
		}
	}
}

func TestCLI_CredentialBinding(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	other := startFakeServer(t, unauthenticated)
	cfgHome := t.TempDir()
	env := []string{"XDG_CONFIG_HOME=" + cfgHome}

	t.Run("Login", func(t *testing.T) {
		// Not a terminal and no --with-token: refused, nothing waits.
		requireOneLineError(t, runCLIInput(t, "", env, adminToken+"\n", "login", s.URL), 2, "--with-token")
		// A wrong key is checked with the server and not saved.
		r := runCLIInput(t, "", env, "ryd_ak_not-a-real-key-value\n", "login", s.URL, "--with-token")
		requireOneLineError(t, r, 5, "not saved", "invalid token")
		if _, err := os.Stat(filepath.Join(cfgHome, "runyard", "config.yaml")); !os.IsNotExist(err) {
			t.Fatalf("config after a refused login: %v, want none", err)
		}
		r = runCLIInput(t, "", env, adminToken+"\n", "login", s.URL, "--with-token", "--name", "main")
		if r.Code != 0 || !strings.Contains(r.Stderr, `Context "main" is now current`) {
			t.Fatalf("login --with-token: exit %d, stderr %q", r.Code, r.Stderr)
		}
		fi, err := os.Stat(filepath.Join(cfgHome, "runyard", "config.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
			t.Errorf("config.yaml mode = %v, want %v", got, want)
		}
	})

	t.Run("ContextIsUsed", func(t *testing.T) {
		r := runCLI(t, "", env, "whoami")
		if r.Code != 0 {
			t.Fatalf("whoami with the current context: exit %d, stderr %q", r.Code, r.Stderr)
		}
		var st struct {
			Server, Context, KeyName, OrganizationID, Principal string
			Scopes                                              []string
		}
		out := runCLI(t, "", env, "auth", "status", "-o", "json")
		if err := json.Unmarshal([]byte(out.Stdout), &st); err != nil {
			t.Fatalf("auth status -o json: %v: %q %q", err, out.Stdout, out.Stderr)
		}
		if st.Server != s.URL || st.Context != "main" || st.OrganizationID == "" || st.Principal == "" || len(st.Scopes) == 0 || st.KeyName == "" {
			t.Errorf("auth status = %+v, want server %s, context main, an organization, principal, scopes and key name", st, s.URL)
		}
		text := runCLI(t, "", env, "auth", "status")
		for _, want := range []string{"Server:", s.URL, "Organization:", "Scopes:", "admin", "Expires:"} {
			if !strings.Contains(text.Stdout, want) {
				t.Errorf("auth status shows %q, want %q in it", text.Stdout, want)
			}
		}
	})

	// A service account's key without the admin scope, which may not list
	// the organization's keys, still reads its own record; once revoked it
	// is refused.
	t.Run("NonAdminKey", func(t *testing.T) {
		var created struct {
			Token struct {
				TokenID   string
				ExpiresAt string
			}
			Secret string
		}
		s.mustJSON(t, adminToken, &created, "tokens", "create", "--name", "ci-reader", "--scopes", "runners:read", "--expires-in", "720h")
		requireOneLineError(t, s.run(t, created.Secret, "tokens", "list"), 6, "admin")
		var st struct {
			KeyID, KeyName, ExpiresAt, CreatedAt, KeyRecord, Principal string
			Scopes                                                     []string
		}
		r := s.run(t, created.Secret, "auth", "status", "-o", "json")
		if err := json.Unmarshal([]byte(r.Stdout), &st); r.Code != 0 || err != nil {
			t.Fatalf("auth status -o json: exit %d, %v: %q %q", r.Code, err, r.Stdout, r.Stderr)
		}
		exp, err := time.Parse(time.RFC3339, st.ExpiresAt)
		if want, _ := time.Parse(time.RFC3339Nano, created.Token.ExpiresAt); err != nil || !exp.Equal(want.Truncate(time.Second)) {
			t.Errorf("auth status expiresAt %q (%v), want %s", st.ExpiresAt, err, created.Token.ExpiresAt)
		}
		if st.KeyID != created.Token.TokenID || st.KeyName != "ci-reader" || !slices.Equal(st.Scopes, []string{"runners:read"}) ||
			st.CreatedAt == "" || st.KeyRecord != "" || st.Principal != "service-account" {
			t.Errorf("auth status = %+v, want the key's own name, scopes and expiry", st)
		}
		text := s.mustRun(t, created.Secret, "auth", "status")
		for _, want := range []string{"ci-reader", created.Token.TokenID, "Scopes:", "runners:read", "Expires:", st.ExpiresAt} {
			if !strings.Contains(text, want) {
				t.Errorf("auth status shows %q, want %q in it", text, want)
			}
		}
		if strings.Contains(text, "Note:") {
			t.Errorf("auth status of a non-admin key has a note:\n%s", text)
		}
		s.mustRun(t, adminToken, "tokens", "revoke", "--yes", created.Token.TokenID)
		requireOneLineError(t, s.run(t, created.Secret, "auth", "status"), 5, "revoked")
	})

	t.Run("NoCredentialToAnotherServer", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			env  []string
			args []string
		}{
			{"Flag", nil, []string{"--server", other.URL, "whoami"}},
			{"Env", []string{"RUNYARD_SERVER=" + other.URL}, []string{"whoami"}},
			{"ContextFlag", nil, []string{"--context", "main", "--server", other.URL, "whoami"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := len(other.requests())
				r := runCLI(t, "", append(append([]string(nil), env...), tc.env...), tc.args...)
				requireOneLineError(t, r, 5, "authentication required", `the key of context "main" belongs to `+s.URL, "runyard login "+other.URL)
				requireNoCredential(t, tc.name, other, before)
			})
		}
		// A key given on the command line goes where it is told: the
		// fake server does record headers.
		before := len(other.requests())
		runCLI(t, "", env, "--server", other.URL, "--token", "explicit-key", "whoami")
		if got := other.requests()[before:]; len(got) != 1 || got[0] != "Bearer explicit-key" {
			t.Errorf("an explicit --token: the other server got %q, want the key", got)
		}
	})

	t.Run("Contexts", func(t *testing.T) {
		var list struct {
			Contexts []struct {
				Name, Server string
				Current      bool
				HasToken     bool
			}
		}
		r := runCLI(t, "", env, "context", "list", "-o", "json")
		if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil || len(list.Contexts) != 1 {
			t.Fatalf("context list -o json: %v %q", err, r.Stdout)
		}
		if c := list.Contexts[0]; c.Name != "main" || c.Server != s.URL || !c.Current || !c.HasToken {
			t.Errorf("context list = %+v", list.Contexts)
		}
		if strings.Contains(r.Stdout, adminToken) {
			t.Errorf("context list shows the key")
		}
		requireOneLineError(t, runCLI(t, "", env, "context", "use", "nope"), 2, `no context "nope"`)
		requireOneLineError(t, runCLI(t, "", env, "context", "delete", "main"), 2, "--yes")
		if r := runCLI(t, "", env, "context", "delete", "main", "--yes"); r.Code != 0 {
			t.Fatalf("context delete --yes: exit %d, %q", r.Code, r.Stderr)
		}
		// Without a context nothing is sent to the default server either.
		before := len(other.requests())
		requireOneLineError(t, runCLI(t, "", env, "--server", other.URL, "whoami"), 5, "no API key for "+other.URL, "runyard login")
		requireNoCredential(t, "no context", other, before)
	})

	t.Run("AdminTokenFile", func(t *testing.T) {
		// A server started from home/.runyard records that its
		// admin-token belongs to it; the CLI run in home sends it there
		// and nowhere else.
		home := t.TempDir()
		own := startServer(t, serverConfig{DataDir: filepath.Join(home, ".runyard")})
		fresh := []string{"XDG_CONFIG_HOME=" + t.TempDir()}
		if r := runCLI(t, home, fresh, "--server", own.URL, "whoami"); r.Code != 0 {
			t.Fatalf("whoami in the data directory's parent: exit %d, %q", r.Code, r.Stderr)
		}
		before := len(other.requests())
		r := runCLI(t, home, fresh, "--server", other.URL, "whoami")
		requireOneLineError(t, r, 5, ".runyard/admin-token belongs to "+own.URL)
		requireNoCredential(t, "admin-token and --server elsewhere", other, before)

		// A copy without the record of its server is never sent.
		bare := t.TempDir()
		key, err := os.ReadFile(filepath.Join(home, ".runyard", "admin-token"))
		if err != nil {
			t.Fatal(err)
		}
		os.Mkdir(filepath.Join(bare, ".runyard"), 0o700)
		if err := os.WriteFile(filepath.Join(bare, ".runyard", "admin-token"), key, 0o600); err != nil {
			t.Fatal(err)
		}
		before = len(other.requests())
		requireOneLineError(t, runCLI(t, bare, fresh, "--server", other.URL, "whoami"), 5, "no record of the server")
		requireNoCredential(t, "admin-token without its server", other, before)
	})
}

func TestCLI_OutputFormats(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	one := createRunner(t, s, "fmt-one", "linux-host")
	createRunner(t, s, "fmt-two", "gcp")
	long := createRunner(t, s, "fmt-"+strings.Repeat("long-name-", 10), "gcp")

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"Table", []string{"runners", "list"}, []string{"NAME", "fmt-one", "fmt-two"}},
		{"Wide", []string{"runners", "list", "-o", "wide"}, []string{"NAME", "REGION", "CREATOR", "fmt-one"}},
		{"JSON", []string{"runners", "list", "-o", "json"}, []string{`"runners": [`, `"name": "fmt-one"`}},
		{"YAML", []string{"runners", "list", "-o", "yaml"}, []string{"runners:", "name: fmt-one", "name: fmt-two"}},
		{"JSONPath", []string{"runners", "list", "-o", "jsonpath={.runners[*].name}"}, []string{"fmt-one fmt-two"}},
		{"GoTemplate", []string{"runners", "list", "-o", "go-template={{range .runners}}{{.name}};{{end}}"}, []string{"fmt-one;fmt-two;"}},
		{"JQ", []string{"runners", "list", "--jq", ".runners[].name"}, []string{"fmt-one\nfmt-two\n"}},
		{"JQObject", []string{"runners", "list", "--jq", ".runners[0] | {name}"}, []string{`{"name":"fmt-one"}`}},
		{"WhoamiYAML", []string{"whoami", "-o", "yaml"}, []string{"organizationId:", "principal: PRINCIPAL_"}},
		{"WhoamiJSONPath", []string{"whoami", "-o", "jsonpath={.subject.principal}"}, []string{"PRINCIPAL_"}},
		{"TokensJQ", []string{"tokens", "list", "--jq", ".tokens[] | select(.scopes | index(\"admin\")) | .principal"}, []string{"PRINCIPAL_"}},
		{"VersionJSON", []string{"version", "-o", "json"}, []string{`"version"`, `"commit"`, `"goVersion": "go1.`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := s.mustRun(t, adminToken, tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("runyard %s:\n%s\nwant it to contain %q", strings.Join(tc.args, " "), out, w)
				}
			}
			if strings.Contains(out, "\x1b[") {
				t.Errorf("runyard %s: colour on a pipe: %q", strings.Join(tc.args, " "), out)
			}
		})
	}
	// Tables fit the terminal and are bold only on one, never with NO_COLOR.
	for _, tc := range []struct {
		name    string
		env     []string
		bold    bool
		maxLine int
	}{
		{"TTY", nil, true, 100},
		{"NoColor", []string{"NO_COLOR=1"}, false, 100},
	} {
		t.Run("Terminal"+tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, "--server", s.URL, "--token", adminToken, "runners", "list")
			cmd.Dir, cmd.Env = emptyDir, processEnv(tc.env...)
			f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: uint16(tc.maxLine)})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			out, _ := io.ReadAll(f) // EIO once the process exits
			cmd.Wait()
			text := strings.ReplaceAll(string(out), "\r", "")
			if got := strings.Contains(text, "\x1b[1m"); got != tc.bold {
				t.Errorf("bold header = %v, want %v:\n%q", got, tc.bold, text)
			}
			plain := strings.NewReplacer("\x1b[1m", "", "\x1b[0m", "").Replace(text)
			for _, line := range strings.Split(strings.TrimSpace(plain), "\n") {
				if n := len([]rune(line)); n > tc.maxLine {
					t.Errorf("line of %d characters on a %d-column terminal: %q", n, tc.maxLine, line)
				}
			}
			// The long name is shortened; IDs never are.
			for _, want := range []string{"NAME", one.RunnerID, long.RunnerID, "fmt-long-name…"} {
				if !strings.Contains(plain, want) {
					t.Errorf("table on the terminal:\n%s\nwant it to contain %q", plain, want)
				}
			}
		})
	}
}

func TestCLI_DestructiveNeedsConfirmation(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	r := createRunner(t, s, "keep-me", "gcp")

	// Not a terminal: refused without --yes, nothing deleted.
	res := runCLIInput(t, "", nil, "y\n", "--server", s.URL, "--token", adminToken, "runners", "delete", r.RunnerID)
	requireOneLineError(t, res, 2, "runyard runners delete "+r.RunnerID, "cannot be undone", "--yes")
	s.mustRun(t, adminToken, "runners", "get", r.RunnerID)

	// On a terminal it asks: no keeps the runner, yes deletes it.
	for _, tc := range []struct {
		answer string
		code   int
	}{{"n", 1}, {"y", 0}} {
		cmd := exec.Command(bin, "--server", s.URL, "--token", adminToken, "runners", "delete", r.RunnerID, "--force")
		cmd.Dir, cmd.Env = emptyDir, processEnv()
		f, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		buf := make([]byte, 4096)
		for !strings.Contains(out.String(), "Continue? [y/N]") {
			n, err := f.Read(buf)
			if err != nil {
				t.Fatalf("no prompt: %v, output %q", err, out.String())
			}
			out.Write(buf[:n])
		}
		io.WriteString(f, tc.answer+"\n")
		rest, _ := io.ReadAll(f)
		out.Write(rest)
		cmd.Wait()
		f.Close()
		if got := cmd.ProcessState.ExitCode(); got != tc.code {
			t.Errorf("answer %q: exit %d, want %d; output %q", tc.answer, got, tc.code, out.String())
		}
		if tc.answer == "n" {
			if !strings.Contains(out.String(), "aborted") {
				t.Errorf("answer n: output %q, want it to say aborted", out.String())
			}
			s.mustRun(t, adminToken, "runners", "get", r.RunnerID)
		}
	}
	var got struct {
		Runner struct{ Status struct{ Phase string } }
	}
	s.mustJSON(t, adminToken, &got, "runners", "get", r.RunnerID)
	if got.Runner.Status.Phase != "RUNNER_PHASE_DELETED" {
		t.Errorf("after yes: runner phase %q, want deleted", got.Runner.Status.Phase)
	}
}

func TestCLI_InterruptWait(t *testing.T) {
	t.Parallel()
	// A control plane on which the environment never gets to running.
	const envID = "0d8d5cf2-7a51-4a43-9c40-1f4a9e3f0a11"
	// Every answer is this GetEnvironmentResponse; StartEnvironment's empty
	// answer reads it as unknown fields.
	body, err := proto.Marshal(&gitpodv1.GetEnvironmentResponse{Environment: &gitpodv1.Environment{
		Id:     envID,
		Spec:   &gitpodv1.EnvironmentSpec{SpecVersion: 2, DesiredPhase: gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING},
		Status: &gitpodv1.EnvironmentStatus{Phase: gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STARTING},
	}})
	if err != nil {
		t.Fatal(err)
	}
	fake := startFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/proto")
		w.Write(body)
	})
	cmd := exec.Command(bin, "--server", fake.URL, "--token", "k", "environments", "start", envID, "--wait")
	cmd.Dir, cmd.Env = emptyDir, processEnv()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	eventually(t, "the wait shows the environment starting", func() bool {
		select {
		case <-done:
			t.Fatalf("the wait ended by itself: stdout %q, stderr %q", stdout.String(), stderr.String())
		default:
		}
		return strings.Contains(stdout.String(), "starting")
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(exitTimeout):
		t.Fatalf("no exit after SIGINT; stdout %q", stdout.String())
	}
	if got, want := cmd.ProcessState.ExitCode(), 130; got != want {
		t.Errorf("exit code after SIGINT = %d, want %d; stderr %q", got, want, stderr.String())
	}
	requireOneLine(t, "interrupted wait", stderr.String(), "interrupted while waiting", "only the waiting stopped",
		"keeps starting", "runyard environments stop "+envID)
}

func TestCLI_LoginPrompt(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	cfg := t.TempDir()
	cmd := exec.Command(bin, "login", s.URL, "--web=false")
	cmd.Dir, cmd.Env = emptyDir, processEnv("XDG_CONFIG_HOME="+cfg)
	f, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(out.String(), "Paste an API key for "+s.URL) {
		n, err := f.Read(buf)
		if err != nil {
			t.Fatalf("no prompt: %v, output %q", err, out.String())
		}
		out.Write(buf[:n])
	}
	// Type the key once the CLI has turned echo off, as a person would
	// after the prompt shows.
	eventually(t, "echo is off", func() bool {
		tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		return err == nil && tio.Lflag&unix.ECHO == 0
	})
	io.WriteString(f, adminToken+"\r")
	rest, _ := io.ReadAll(f)
	out.Write(rest)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("login on a terminal: exit %d, output %q", code, out.String())
	}
	if strings.Contains(out.String(), adminToken) {
		t.Errorf("the key was echoed: %q", out.String())
	}
	if r := runCLI(t, "", []string{"XDG_CONFIG_HOME=" + cfg}, "whoami"); r.Code != 0 {
		t.Errorf("whoami after login: exit %d, %q", r.Code, r.Stderr)
	}
}

// TestCLI_LogURLOnAnotherOrigin: a log URL on another origin (a control
// plane's --public-url) is read from the server the key belongs to; the
// other origin never receives the key.
func TestCLI_LogURLOnAnotherOrigin(t *testing.T) {
	t.Parallel()
	const svcID = "6c1f0c4e-3c3b-4c1e-9d36-0c1f0c4e3c3b"
	public := startFakeServer(t, unauthenticated)
	body, err := proto.Marshal(&gitpodv1.GetServiceResponse{Service: &gitpodv1.Service{
		Id:     svcID,
		Status: &gitpodv1.ServiceStatus{LogUrl: public.URL + "/logs/r1/l1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logPaths []string
	own := startFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/logs/") {
			mu.Lock()
			logPaths = append(logPaths, r.URL.Path)
			mu.Unlock()
			io.WriteString(w, "hello from the log\n")
			return
		}
		w.Header().Set("Content-Type", "application/proto")
		w.Write(body)
	})
	r := runCLI(t, "", nil, "--server", own.URL, "--token", "the-key", "services", "logs", svcID)
	if r.Code != 0 || r.Stdout != "hello from the log\n" {
		t.Fatalf("services logs: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if got := public.requests(); len(got) != 0 {
		t.Errorf("the log URL's own origin got %d requests (%q), want none", len(got), got)
	}
	auth := own.requests()
	if last := auth[len(auth)-1]; last != "Bearer the-key" {
		t.Errorf("the log request to the key's server had Authorization %q", last)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logPaths) != 1 || logPaths[0] != "/logs/r1/l1" {
		t.Errorf("log requests = %q, want /logs/r1/l1", logPaths)
	}
}
