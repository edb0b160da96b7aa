package envs_test

import (
	"context"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/testutil"
)

const gitHTTPBackend = "/usr/lib/git-core/git-http-backend"

// gitForge serves the bare repository org/repo.git under root over git's
// smart HTTP protocol on loopback (git http-backend behind net/http/cgi), as
// a forge would. The repository has main (README), a branch feature/x
// (README, feature.txt) and a pull request ref refs/pull/7/head (pr.txt)
// that no branch reaches.
func gitForge(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(gitHTTPBackend); err != nil {
		t.Skipf("git http-backend not installed: %v", err)
	}
	work := strings.TrimPrefix(gitRepo(t, map[string]string{"README": "main\n"}), "file://")
	run := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(work, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(work, "checkout", "--quiet", "-b", "feature/x")
	write("feature.txt", "feature\n")
	run(work, "add", ".")
	run(work, "commit", "--quiet", "-m", "feature")
	run(work, "checkout", "--quiet", "-b", "pr", "main")
	write("pr.txt", "pull request\n")
	run(work, "add", ".")
	run(work, "commit", "--quiet", "-m", "pr")
	pr := run(work, "rev-parse", "HEAD")
	run(work, "checkout", "--quiet", "main")

	root := t.TempDir()
	bare := filepath.Join(root, "org", "repo.git")
	run(work, "clone", "--quiet", "--bare", work, bare)
	run(bare, "update-ref", "refs/pull/7/head", pr)
	run(bare, "branch", "-D", "pr")
	run(bare, "config", "http.receivepack", "false")

	srv := httptest.NewServer(&cgi.Handler{
		Path: gitHTTPBackend,
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	})
	t.Cleanup(srv.Close)
	return srv.URL
}

func (c *client) createFromContextURL(t *testing.T, class, url string) string {
	t.Helper()
	res := must[gitpodv1.CreateEnvironmentResponse](t, "create environment from "+url)(c.envs.CreateEnvironment(context.Background(), req(&gitpodv1.CreateEnvironmentRequest{
		Spec: &gitpodv1.EnvironmentSpec{
			Machine: &gitpodv1.EnvironmentSpec_Machine{Class: class},
			Content: &gitpodv1.EnvironmentSpec_Content{Initializer: &gitpodv1.EnvironmentInitializer{
				Specs: []*gitpodv1.EnvironmentInitializer_Spec{{Spec: &gitpodv1.EnvironmentInitializer_Spec_ContextUrl{
					ContextUrl: &gitpodv1.ContextURLInitializer{Url: url},
				}}},
			}},
		},
	})))
	if got := res.GetEnvironment().GetMetadata().GetOriginalContextUrl(); got != url {
		t.Errorf("originalContextUrl = %q, want %q", got, url)
	}
	return res.GetEnvironment().GetId()
}

// TestEnvironments_ContextURL creates environments the vendor's first
// documented way, from context URLs of a repository served over HTTP like a
// forge, and checks that each workspace holds what the URL names.
func TestEnvironments_ContextURL(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			forge := gitForge(t)
			c, class, _, _ := setup(t, backend, t.TempDir())
			local := gitRepo(t, map[string]string{"README": "local\n"})
			for _, tc := range []struct {
				url  string
				want map[string]string // file -> content; "" means absent
			}{
				{forge + "/org/repo", map[string]string{"README": "main\n", "feature.txt": "", "pr.txt": ""}},
				{forge + "/org/repo/tree/feature/x", map[string]string{"README": "main\n", "feature.txt": "feature\n"}},
				{forge + "/org/repo/pull/7", map[string]string{"pr.txt": "pull request\n", "feature.txt": ""}},
				{strings.TrimPrefix(local, "file://"), map[string]string{"README": "local\n"}},
				{local, map[string]string{"README": "local\n"}},
			} {
				id := c.createFromContextURL(t, class, tc.url)
				e := c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
				dir := e.GetStatus().GetContent().GetContentLocationInMachine()
				for name, want := range tc.want {
					b, err := os.ReadFile(filepath.Join(dir, name))
					switch {
					case want == "" && err == nil:
						t.Errorf("%s: %s exists, want it absent", tc.url, name)
					case want != "" && string(b) != want:
						t.Errorf("%s: %s = %q (%v), want %q", tc.url, name, b, err, want)
					}
				}
			}
		})
	}
}

// Ensure the forge answers like one: a plain clone over HTTP works. This
// guards the fixture, so a failure above is runyard's.
func TestGitForgeFixture(t *testing.T) {
	forge := gitForge(t)
	dst := filepath.Join(t.TempDir(), "c")
	out, err := exec.Command("git", "clone", "--quiet", forge+"/org/repo.git", dst).CombinedOutput()
	if err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	if _, err := http.Get(forge + "/org/repo.git/info/refs?service=git-upload-pack"); err != nil {
		t.Fatal(err)
	}
}
