package kubiya_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/api/kubiya"
	"github.com/runyard/runyard/internal/k8sschema"
	"github.com/runyard/runyard/internal/manifest"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/testutil"
)

func TestSeeds_ResponseShapes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		c := newClient(t, ts.URL, userKey(testutil.AdminToken))
		n := name("runner-prod")
		res := c.do(t, http.MethodPost, "/api/v3/runners/"+n)
		res.wantOK(t, nil)
		checkShape(t, res.Body, "seed004_create_manifest_response.json")

		res = c.do(t, http.MethodGet, "/v1/runners/"+n+"/manifest")
		res.wantOK(t, nil)
		checkShape(t, res.Body, "seed004_get_manifest_response.json")

		res = c.do(t, http.MethodGet, "/v1/runners/"+n+"/describe")
		res.wantOK(t, nil)
		checkShape(t, res.Body, "seed004_describe_response.json")

		res = c.do(t, http.MethodGet, "/api/v3/runners/"+n+"/health")
		res.wantOK(t, nil)
		checkShape(t, res.Body, "seed004_health_response.json")

		res = c.do(t, http.MethodGet, "/api/v3/runners")
		res.wantOK(t, nil)
		checkShape(t, res.Body, "seed004_list_runners_response.json")

		// The download is YAML that starts, like the seed's, with the
		// namespace and holds the runner's workload (a StatefulSet here).
		var m manifestResponse
		c.do(t, http.MethodGet, "/v1/runners/"+n+"/manifest").wantOK(t, &m)
		dl := newClient(t, ts.URL, "").do(t, http.MethodGet, m.ManifestURL).wantStatus(t, http.StatusOK)
		ours, seed := kinds(t, string(dl.Body)), kinds(t, string(readTestdata(t, "seed004_download_manifest.yaml")))
		if ours[0] != seed[0] || !slices.Contains(ours, "StatefulSet") {
			t.Errorf("kinds %v; the seed's are %v", ours, seed)
		}
	})
}

// kinds lists the kinds of the documents of a YAML stream.
func kinds(t *testing.T, stream string) []string {
	t.Helper()
	var out []string
	for _, doc := range splitDocuments(stream) {
		var tm metav1.TypeMeta
		mustOK(t, yaml.Unmarshal([]byte(doc), &tm), "decode type of document")
		out = append(out, tm.Kind)
	}
	return out
}

// splitDocuments splits a YAML stream on "---" lines and drops the "..."
// end markers.
func splitDocuments(stream string) []string {
	var out []string
	for _, doc := range strings.Split("\n"+stream, "\n---\n") {
		doc = strings.TrimSuffix(strings.TrimSpace(doc), "\n...")
		if doc = strings.TrimSuffix(doc, "..."); strings.TrimSpace(doc) != "" {
			out = append(out, doc)
		}
	}
	return out
}

// parsed are the typed objects of a manifest.
type parsed struct {
	Namespace      *corev1.Namespace
	ServiceAccount *corev1.ServiceAccount
	Role           *rbacv1.Role
	RoleBinding    *rbacv1.RoleBinding
	Secret         *corev1.Secret
	Service        *corev1.Service
	PDB            *policyv1.PodDisruptionBudget
	StatefulSet    *appsv1.StatefulSet
}

// parseManifest decodes each document strictly into the Kubernetes type its
// kind names, so a field the type lacks is an error.
func parseManifest(t *testing.T, content string) parsed {
	t.Helper()
	var p parsed
	for i, doc := range splitDocuments(content) {
		var tm metav1.TypeMeta
		mustOK(t, yaml.Unmarshal([]byte(doc), &tm), "decode type")
		var dst any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Namespace":
			p.Namespace = &corev1.Namespace{}
			dst = p.Namespace
		case "v1 ServiceAccount":
			p.ServiceAccount = &corev1.ServiceAccount{}
			dst = p.ServiceAccount
		case "rbac.authorization.k8s.io/v1 Role":
			p.Role = &rbacv1.Role{}
			dst = p.Role
		case "rbac.authorization.k8s.io/v1 RoleBinding":
			p.RoleBinding = &rbacv1.RoleBinding{}
			dst = p.RoleBinding
		case "v1 Secret":
			p.Secret = &corev1.Secret{}
			dst = p.Secret
		case "v1 Service":
			p.Service = &corev1.Service{}
			dst = p.Service
		case "policy/v1 PodDisruptionBudget":
			p.PDB = &policyv1.PodDisruptionBudget{}
			dst = p.PDB
		case "apps/v1 StatefulSet":
			p.StatefulSet = &appsv1.StatefulSet{}
			dst = p.StatefulSet
		default:
			t.Fatalf("document %d: unexpected %s %s:\n%s", i, tm.APIVersion, tm.Kind, doc)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), dst); err != nil {
			t.Fatalf("document %d (%s): %v\n%s", i, tm.Kind, err, doc)
		}
	}
	if p.Namespace == nil || p.ServiceAccount == nil || p.Role == nil || p.RoleBinding == nil || p.Secret == nil || p.Service == nil || p.PDB == nil || p.StatefulSet == nil {
		t.Fatalf("manifest lacks objects: %+v\n%s", p, content)
	}
	// Decoding into the Go types misses what the API server would refuse
	// (a missing required field, say): the served manifest must validate
	// against the release's schemas as well.
	if _, err := k8sschema.ValidateStream([]byte(content)); err != nil {
		t.Fatalf("the manifest does not validate against Kubernetes %s: %v", k8sschema.Release, err)
	}
	return p
}

// exchangeToken reads the exchange token the Deployment gets from the
// Secret, checking that the two are wired together.
func exchangeToken(t *testing.T, p parsed) string {
	t.Helper()
	if got, want := len(p.StatefulSet.Spec.Template.Spec.Containers), 1; got != want {
		t.Fatalf("%d containers, want %d", got, want)
	}
	ctr := p.StatefulSet.Spec.Template.Spec.Containers[0]
	var ref *corev1.SecretKeySelector
	for _, e := range ctr.Env {
		if e.Name == manifest.ExchangeTokenEnv && e.ValueFrom != nil {
			ref = e.ValueFrom.SecretKeyRef
		}
	}
	if ref == nil || ref.Name != p.Secret.Name {
		t.Fatalf("env %s does not come from the Secret %q: %+v", manifest.ExchangeTokenEnv, p.Secret.Name, ctr.Env)
	}
	x := p.Secret.StringData[ref.Key]
	if !strings.HasPrefix(x, "ryd_ex_") {
		t.Fatalf("the Secret's %q is %q, not an exchange token", ref.Key, x)
	}
	return x
}

func TestManifest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		c := newClient(t, ts.URL, userKey(testutil.AdminToken))
		n := name("k8s")
		created := c.create(t, n)
		if created.Name != n || !strings.HasPrefix(created.ManifestURL, publicURL+"/api/v3/manifests/"+n+".yaml?") {
			t.Fatalf("create: %+v", created)
		}
		m := c.manifest(t, n)
		p := parseManifest(t, m.ManifestContent)

		t.Run("Objects", func(t *testing.T) {
			d := p.StatefulSet
			if got, want := p.Namespace.Name, manifest.DefaultNamespace; got != want {
				t.Errorf("namespace %q, want %q", got, want)
			}
			for _, ns := range []string{p.ServiceAccount.Namespace, p.Role.Namespace, p.RoleBinding.Namespace, p.Secret.Namespace, d.Namespace} {
				if ns != p.Namespace.Name {
					t.Errorf("an object is in namespace %q, not %q", ns, p.Namespace.Name)
				}
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
				t.Errorf("replicas %v, want 1", d.Spec.Replicas)
			}
			pod := d.Spec.Template.Spec
			if pod.ServiceAccountName != p.ServiceAccount.Name {
				t.Errorf("pod runs as %q, not the manifest's service account %q", pod.ServiceAccountName, p.ServiceAccount.Name)
			}
			if got := p.RoleBinding.RoleRef.Name; got != p.Role.Name || p.RoleBinding.Subjects[0].Name != p.ServiceAccount.Name {
				t.Errorf("role binding %+v does not bind role %q to %q", p.RoleBinding, p.Role.Name, p.ServiceAccount.Name)
			}
			for _, rule := range p.Role.Rules {
				for _, v := range rule.Verbs {
					if v != "get" && v != "list" {
						t.Errorf("role grants %q: more than reading", v)
					}
				}
			}
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			mustOK(t, err, "selector")
			if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("selector %v does not match the pod labels %v", sel, d.Spec.Template.Labels)
			}
			ctr := pod.Containers[0]
			if got, want := ctr.Image, manifest.DefaultImage(); got != want {
				t.Errorf("image %q, want %q", got, want)
			}
			wantArgs := []string{"runner", "--server", publicURL, "--state-dir", manifest.StateDir, "--exchange-token", "$(RUNYARD_EXCHANGE_TOKEN)", "--health-addr", ":8081"}
			if !slices.Equal(ctr.Args, wantArgs) {
				t.Errorf("args %q, want %q", ctr.Args, wantArgs)
			}
			if len(ctr.VolumeMounts) == 0 || ctr.VolumeMounts[0].Name != d.Spec.VolumeClaimTemplates[0].Name || ctr.VolumeMounts[0].MountPath != manifest.StateDir {
				t.Errorf("volume mounts %+v: want the state dir on the claim", ctr.VolumeMounts)
			}
			if ctr.Resources.Requests.Memory().IsZero() || ctr.Resources.Limits.Memory().IsZero() {
				t.Errorf("resources %+v: want memory requests and limits", ctr.Resources)
			}
			// The probes reach the daemon's --health-addr through the named
			// container port.
			if len(ctr.Ports) != 1 || ctr.Ports[0].Name != "health" || ctr.Ports[0].ContainerPort != manifest.HealthPort {
				t.Errorf("ports %+v: want health on %d", ctr.Ports, manifest.HealthPort)
			}
			for _, pr := range []struct {
				probe *corev1.Probe
				path  string
			}{{ctr.LivenessProbe, "/healthz"}, {ctr.ReadinessProbe, "/readyz"}} {
				if pr.probe == nil || pr.probe.HTTPGet == nil || pr.probe.HTTPGet.Path != pr.path || pr.probe.HTTPGet.Port.String() != "health" {
					t.Errorf("probe %+v: want GET %s on port health", pr.probe, pr.path)
				}
			}
		})

		t.Run("ExchangeTokenWorksOnce", func(t *testing.T) {
			x := exchangeToken(t, p)
			ids := gitpodv1connect.NewIdentityServiceClient(http.DefaultClient, ts.URL)
			res, err := ids.ExchangeToken(context.Background(), connect.NewRequest(&gitpodv1.ExchangeTokenRequest{ExchangeToken: x}))
			mustOK(t, err, "exchange the Secret's token")
			if !strings.HasPrefix(res.Msg.GetAccessToken(), "ryd_rt_") {
				t.Fatalf("access token %q", res.Msg.GetAccessToken())
			}
			_, err = ids.ExchangeToken(context.Background(), connect.NewRequest(&gitpodv1.ExchangeTokenRequest{ExchangeToken: x}))
			if got, want := connect.CodeOf(err), connect.CodeUnauthenticated; got != want {
				t.Fatalf("second exchange: %v, want code %s", err, want)
			}
		})

		t.Run("DownloadsMintNothing", func(t *testing.T) {
			// A URL carries the token minted when it was made: every
			// download returns the same manifest, so applying it twice
			// cannot start a second daemon with a token of its own.
			anon := newClient(t, ts.URL, "")
			first := anon.do(t, http.MethodGet, created.ManifestURL).wantStatus(t, http.StatusOK)
			again := anon.do(t, http.MethodGet, created.ManifestURL).wantStatus(t, http.StatusOK)
			if string(first.Body) != string(again.Body) {
				t.Fatal("two downloads of one manifest URL differ")
			}
			// The manifest of GET .../manifest and the download of its URL
			// carry one token; each new URL has its own.
			fresh := c.manifest(t, n)
			dl := anon.do(t, http.MethodGet, fresh.ManifestURL).wantStatus(t, http.StatusOK)
			a, b, d := exchangeToken(t, parseManifest(t, fresh.ManifestContent)), exchangeToken(t, parseManifest(t, string(dl.Body))), exchangeToken(t, parseManifest(t, string(first.Body)))
			if a != b {
				t.Fatal("the manifest and the download of its URL carry different tokens")
			}
			if a == d || a == exchangeToken(t, p) {
				t.Fatal("two manifest URLs share an exchange token")
			}
			if strings.Contains(fresh.ManifestURL, a) {
				t.Fatal("the manifest URL holds the exchange token in plaintext")
			}
		})

	})
}

func TestCreateRunner(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		c := newClient(t, ts.URL, userKey(testutil.AdminToken))
		t.Run("Idempotent", func(t *testing.T) {
			n := name("twice")
			a, b := c.create(t, n), c.create(t, n)
			if a.Name != n || b.Name != n {
				t.Fatalf("names %q and %q, want %q", a.Name, b.Name, n)
			}
			count := 0
			for _, r := range c.list(t) {
				if r.Name == n {
					count++
				}
			}
			if count != 1 {
				t.Fatalf("%d runners named %q after two POSTs, want 1", count, n)
			}
		})
		t.Run("NameWithSpaces", func(t *testing.T) {
			// runyard allows names Kubernetes does not; the manifest's
			// object names are derived, the runner's name kept.
			n := name("Production Runner")
			m := c.create(t, n)
			if m.Name != n {
				t.Fatalf("name %q, want %q", m.Name, n)
			}
			p := parseManifest(t, c.manifest(t, n).ManifestContent)
			if got, want := p.StatefulSet.Name, manifest.ObjectName(n); got != want {
				t.Errorf("deployment %q, want %q", got, want)
			}
			dl := newClient(t, ts.URL, "").do(t, http.MethodGet, m.ManifestURL).wantStatus(t, http.StatusOK)
			parseManifest(t, string(dl.Body))
		})
	})
}

func TestErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		admin := newClient(t, ts.URL, userKey(testutil.AdminToken))
		n := name("errs")
		admin.create(t, n)
		readOnly := createAPIKey(t, ts.URL, "runners:read")
		unrelated := createAPIKey(t, ts.URL, "pods:read")
		reads := []string{"/api/v3/runners", "/v1/runners/" + n + "/describe", "/api/v3/runners/" + n + "/health", "/v1/runners/" + n + "/manifest"}

		t.Run("ErrNoCredentials", func(t *testing.T) {
			c := newClient(t, ts.URL, "")
			for _, p := range reads {
				c.do(t, http.MethodGet, p).wantError(t, http.StatusUnauthorized, "unauthenticated")
			}
			c.do(t, http.MethodPost, "/api/v3/runners/"+n).wantError(t, http.StatusUnauthorized, "unauthenticated")
		})
		t.Run("ErrBadCredentials", func(t *testing.T) {
			newClient(t, ts.URL, userKey("ryd_ak_nope")).do(t, http.MethodGet, reads[0]).wantError(t, http.StatusUnauthorized, "unauthenticated", "invalid token")
			newClient(t, ts.URL, "Basic abc").do(t, http.MethodGet, reads[0]).wantError(t, http.StatusUnauthorized, "unauthenticated")
		})
		t.Run("BearerAlsoWorks", func(t *testing.T) {
			newClient(t, ts.URL, "Bearer "+testutil.AdminToken).do(t, http.MethodGet, reads[0]).wantOK(t, nil)
		})
		t.Run("ReadOnlyKey", func(t *testing.T) {
			c := newClient(t, ts.URL, userKey(readOnly))
			for _, p := range reads[:3] {
				c.do(t, http.MethodGet, p).wantOK(t, nil)
			}
			c.do(t, http.MethodPost, "/api/v3/runners/"+name("ro")).wantError(t, http.StatusForbidden, "permission_denied", "runners:write")
			// A manifest holds a new exchange token: a credential a
			// read-only key must not mint.
			c.do(t, http.MethodGet, reads[3]).wantError(t, http.StatusForbidden, "permission_denied", "runners:write")
		})
		t.Run("ErrScope", func(t *testing.T) {
			c := newClient(t, ts.URL, userKey(unrelated))
			for _, p := range reads[:3] {
				c.do(t, http.MethodGet, p).wantError(t, http.StatusForbidden, "permission_denied", "runners:read")
			}
			// The manifest mints a token: what it needs is runners:write.
			c.do(t, http.MethodGet, reads[3]).wantError(t, http.StatusForbidden, "permission_denied", "runners:write")
		})
		t.Run("ErrNotFound", func(t *testing.T) {
			missing := name("missing")
			for _, p := range []string{"/v1/runners/" + missing + "/describe", "/api/v3/runners/" + missing + "/health", "/v1/runners/" + missing + "/manifest"} {
				admin.do(t, http.MethodGet, p).wantError(t, http.StatusNotFound, "not_found", missing)
			}
		})
		t.Run("ErrRunnerName", func(t *testing.T) {
			// %2F is a '/' inside the one path segment {name} matches.
			for _, bad := range []string{"ab", "%01bad-name", "%20lead", "team%2Frunner"} {
				for _, p := range []string{"/v1/runners/" + bad + "/describe", "/api/v3/runners/" + bad + "/health", "/v1/runners/" + bad + "/manifest"} {
					admin.do(t, http.MethodGet, p).wantError(t, http.StatusBadRequest, "invalid_argument", "runner_name")
				}
				admin.do(t, http.MethodPost, "/api/v3/runners/"+bad).wantError(t, http.StatusBadRequest, "invalid_argument", "runner_name")
			}
		})
	})
}

func TestHealth(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		c := newClient(t, ts.URL, userKey(testutil.AdminToken))
		connected, never := name("connected"), name("never")
		m := c.create(t, connected)
		c.create(t, never)

		// Deploy as the manifest says, minus Kubernetes: the downloaded
		// Secret's token, the manifest's server.
		dl := newClient(t, ts.URL, "").do(t, http.MethodGet, m.ManifestURL).wantStatus(t, http.StatusOK)
		x := exchangeToken(t, parseManifest(t, string(dl.Body)))
		testutil.StartRunner(t, runner.Config{Server: ts.URL, ExchangeToken: x, Version: "2.0.0"})

		deadline := time.Now().Add(20 * time.Second)
		h := c.health(t, connected)
		for h.Status != "healthy" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			h = c.health(t, connected)
		}

		t.Run("Connected", func(t *testing.T) {
			if h.Status != "healthy" || h.Health != "ok" || h.Version != "2.0.0" {
				t.Fatalf("health %+v: want healthy, ok, 2.0.0", h)
			}
			if _, err := time.Parse(time.RFC3339, h.Time); err != nil {
				t.Errorf("time: %v", err)
			}
			var names []string
			for _, ch := range h.Checks {
				names = append(names, ch.Name)
				if ch.Status != "healthy" || ch.Version != "2.0.0" || ch.Metadata.Release != "2.0.0" {
					t.Errorf("check %+v: want healthy 2.0.0", ch)
				}
			}
			if want := []string{"tool-manager", "agent-manager"}; !slices.Equal(names, want) {
				t.Errorf("checks %q, want %q", names, want)
			}
		})
		t.Run("NeverConnected", func(t *testing.T) {
			h := c.health(t, never)
			if h.Status != "unknown" || h.Health != "offline" || h.Version != "" || len(h.Checks) != 2 {
				t.Fatalf("health %+v: want unknown, offline, no version, two checks", h)
			}
			for _, ch := range h.Checks {
				if ch.Status != "unknown" {
					t.Errorf("check %+v: want unknown", ch)
				}
			}
		})
		t.Run("List", func(t *testing.T) {
			byName := map[string]listedRunner{}
			for _, r := range c.list(t) {
				byName[r.Name] = r
			}
			on, off := byName[connected], byName[never]
			for _, hh := range []*health{on.RunnerHealth, on.ToolManagerHealth, on.AgentManagerHealth} {
				if hh == nil || *hh != (health{Status: "healthy", Health: "ok", Version: "2.0.0"}) {
					t.Errorf("connected runner's component: %+v", hh)
				}
			}
			for _, hh := range []*health{off.RunnerHealth, off.ToolManagerHealth, off.AgentManagerHealth} {
				if hh == nil || *hh != (health{Status: "unknown", Health: "offline"}) {
					t.Errorf("never-connected runner's component: %+v", hh)
				}
			}
			if on.Version != "2.0.0" || off.Version != "" {
				t.Errorf("versions %q and %q, want 2.0.0 and none", on.Version, off.Version)
			}
			for _, r := range []listedRunner{on, off} {
				if r.Namespace != manifest.DefaultNamespace || r.KubernetesNamespace != manifest.DefaultNamespace {
					t.Errorf("runner %q namespaces %q, %q", r.Name, r.Namespace, r.KubernetesNamespace)
				}
			}
		})
		t.Run("Describe", func(t *testing.T) {
			var got map[string]any
			c.do(t, http.MethodGet, "/v1/runners/"+connected+"/describe").wantOK(t, &got)
			want := map[string]any{"name": connected, "version": "2.0.0", "namespace": "runyard", "kubernetes_namespace": "runyard"}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	})
}

// TestHealth_Clock checks what the full server cannot show without waiting:
// an unhealthy component while the runner is live, and silence past the
// timeout.
func TestHealth_Clock(t *testing.T) {
	for _, b := range testutil.Backends() {
		t.Run(string(b), func(t *testing.T) {
			h := startHarness(t, b, kubiya.Services{RunnerTimeout: 30 * time.Second, ServerURL: publicURL})
			c := newClient(t, h.URL, userKey(testutil.AdminToken))
			n := name("flaky")
			c.create(t, n)
			h.report(t, n, runners.Report{Version: "2.1.0", Components: []runners.Component{
				{Name: "runner", Healthy: true, Version: "2.1.0"},
				{Name: "tool-manager", Healthy: true, Version: "2.1.0", GitSHA: "abcdef123456", Release: "v2.1.0"},
				{Name: "agent-manager", Healthy: false, Version: "2.1.0", Message: "no agents"},
			}})

			got := c.health(t, n)
			if got.Status != "unhealthy" || got.Health != "error" || got.Version != "2.1.0" {
				t.Fatalf("health %+v: want unhealthy, error, 2.1.0", got)
			}
			if got.Checks[0].Status != "healthy" || got.Checks[0].Metadata.GitSHA != "abcdef123456" || got.Checks[0].Metadata.Release != "v2.1.0" {
				t.Errorf("tool-manager %+v", got.Checks[0])
			}
			if got.Checks[1].Status != "unhealthy" {
				t.Errorf("agent-manager %+v: want unhealthy", got.Checks[1])
			}
			if want := h.Clock.Now().Format(time.RFC3339); got.Time != want {
				t.Errorf("time %q, want the clock's %q", got.Time, want)
			}
			l := c.list(t)
			if len(l) != 1 || l[0].AgentManagerHealth.Health != "error" || l[0].ToolManagerHealth.Health != "ok" {
				t.Fatalf("list %+v", l)
			}

			h.Clock.Advance(31 * time.Second)
			got = c.health(t, n)
			if got.Status != "unknown" || got.Health != "offline" {
				t.Fatalf("health after silence %+v: want unknown, offline", got)
			}
			if l := c.list(t); l[0].RunnerHealth.Status != "unknown" || l[0].RunnerHealth.Version != "2.1.0" {
				t.Fatalf("list after silence: runner %+v, want unknown with the last version", l[0].RunnerHealth)
			}
		})
	}
}

func TestList_Many(t *testing.T) {
	for _, b := range testutil.Backends() {
		t.Run(string(b), func(t *testing.T) {
			h := startHarness(t, b, kubiya.Services{ServerURL: publicURL})
			c := newClient(t, h.URL, userKey(testutil.AdminToken))
			// More runners than workers and than one store page, so that
			// order across the pool and paging both show.
			var want []string
			for i := range 105 {
				n := name("many")
				_, _, err := h.Runners.Create(h.Admin, runners.CreateInput{Name: n, Provider: runners.ProviderLinuxHost})
				mustOK(t, err, "create runner")
				want = append(want, n)
				if i%10 == 0 {
					h.report(t, n, runners.Report{Version: "2.0.0", Components: []runners.Component{{Name: "runner", Healthy: true, Version: "2.0.0"}}})
				}
			}
			var got []string
			for i, r := range c.list(t) {
				got = append(got, r.Name)
				wantStatus := "unknown"
				if i%10 == 0 {
					wantStatus = "healthy"
				}
				if r.RunnerHealth.Status != wantStatus {
					t.Errorf("runner %d %q: status %q, want %q", i, r.Name, r.RunnerHealth.Status, wantStatus)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("list order:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestDownload(t *testing.T) {
	for _, b := range testutil.Backends() {
		t.Run(string(b), func(t *testing.T) {
			h := startHarness(t, b, kubiya.Services{ManifestTTL: 10 * time.Minute, ServerURL: "https://runyard.example.com/"})
			c := newClient(t, h.URL, userKey(testutil.AdminToken))
			anon := newClient(t, h.URL, "")
			n, other := name("dl"), name("dl-other")
			m := c.create(t, n)
			c.create(t, other)
			if !strings.HasPrefix(m.ManifestURL, "https://runyard.example.com/api/v3/manifests/"+n+".yaml?") {
				t.Fatalf("manifest_url %q: want the configured server URL", m.ManifestURL)
			}
			// The configured URL names a host this test cannot reach: fetch
			// the same path and query from the harness.
			u, err := url.Parse(m.ManifestURL)
			mustOK(t, err, "parse manifest_url")
			local := func(mut func(path string, q url.Values) (string, url.Values)) string {
				path, q := u.Path, u.Query()
				if mut != nil {
					path, q = mut(path, q)
				}
				return h.URL + path + "?" + q.Encode()
			}

			t.Run("OKWithoutCredentials", func(t *testing.T) {
				res := anon.do(t, http.MethodGet, local(nil)).wantStatus(t, http.StatusOK)
				if got, want := res.Header.Get("Content-Type"), "application/yaml"; got != want {
					t.Errorf("Content-Type %q, want %q", got, want)
				}
				p := parseManifest(t, string(res.Body))
				if got := p.StatefulSet.Spec.Template.Spec.Containers[0].Args[2]; got != "https://runyard.example.com" {
					t.Errorf("--server %q, want the configured URL", got)
				}
			})
			t.Run("ErrTamperedSignature", func(t *testing.T) {
				anon.do(t, http.MethodGet, local(func(p string, q url.Values) (string, url.Values) {
					sig := []byte(q.Get("sig"))
					sig[0] ^= 1
					q.Set("sig", string(sig))
					return p, q
				})).wantError(t, http.StatusForbidden, "permission_denied", "signature")
			})
			t.Run("ErrTamperedToken", func(t *testing.T) {
				anon.do(t, http.MethodGet, local(func(p string, q url.Values) (string, url.Values) {
					tok := []byte(q.Get("token"))
					tok[len(tok)/2] ^= 1
					q.Set("token", string(tok))
					return p, q
				})).wantError(t, http.StatusForbidden, "permission_denied", "signature")
			})
			t.Run("ErrOtherName", func(t *testing.T) {
				anon.do(t, http.MethodGet, local(func(p string, q url.Values) (string, url.Values) {
					return strings.Replace(p, n, other, 1), q
				})).wantError(t, http.StatusForbidden, "permission_denied", "signature")
			})
			t.Run("ErrOtherOrg", func(t *testing.T) {
				anon.do(t, http.MethodGet, local(func(p string, q url.Values) (string, url.Values) {
					q.Set("org", "00000000-0000-4000-8000-000000000000")
					return p, q
				})).wantError(t, http.StatusForbidden, "permission_denied", "signature")
			})
			t.Run("ErrLaterExpiry", func(t *testing.T) {
				anon.do(t, http.MethodGet, local(func(p string, q url.Values) (string, url.Values) {
					q.Set("expires", "99999999999")
					return p, q
				})).wantError(t, http.StatusForbidden, "permission_denied", "signature")
			})
			t.Run("ErrMissingParameters", func(t *testing.T) {
				anon.do(t, http.MethodGet, h.URL+u.Path).wantError(t, http.StatusForbidden, "permission_denied")
				anon.do(t, http.MethodGet, local(func(p string, q url.Values) (string, url.Values) {
					return strings.TrimSuffix(p, ".yaml"), q
				})).wantError(t, http.StatusForbidden, "permission_denied")
			})
			t.Run("ErrExpired", func(t *testing.T) {
				h.Clock.Advance(10*time.Minute - time.Second)
				anon.do(t, http.MethodGet, local(nil)).wantStatus(t, http.StatusOK)
				h.Clock.Advance(time.Second)
				anon.do(t, http.MethodGet, local(nil)).wantError(t, http.StatusGone, "expired")
				// A new URL works again.
				u2, err := url.Parse(c.create(t, n).ManifestURL)
				mustOK(t, err, "parse new URL")
				anon.do(t, http.MethodGet, h.URL+u2.RequestURI()).wantStatus(t, http.StatusOK)
			})
			t.Run("ErrDeletedRunner", func(t *testing.T) {
				u3, err := url.Parse(c.create(t, other).ManifestURL)
				mustOK(t, err, "parse URL")
				r, err := h.Runners.GetByName(h.Admin, "name", other)
				mustOK(t, err, "get runner")
				mustOK(t, h.Runners.Delete(h.Admin, r.ID, true), "delete runner")
				anon.do(t, http.MethodGet, h.URL+u3.RequestURI()).wantError(t, http.StatusNotFound, "not_found", other)
			})
		})
	}
}

// TestDownload_KeyShared checks that a URL signed by one server downloads
// from another on the same database, as replicas behind a load balancer do.
func TestDownload_KeyShared(t *testing.T) {
	h := startHarness(t, testutil.SQLite, kubiya.Services{ServerURL: publicURL})
	c := newClient(t, h.URL, userKey(testutil.AdminToken))
	m := c.create(t, name("shared"))
	u, err := url.Parse(m.ManifestURL)
	mustOK(t, err, "parse URL")

	second := httptestMux(t, h)
	newClient(t, second, "").do(t, http.MethodGet, second+u.RequestURI()).wantStatus(t, http.StatusOK)
}

// TestManifest_NoReachablePublicURL checks that without a --public-url a
// cluster can reach, no manifest and no runner are made: the runner would
// dial its own pod.
func TestManifest_NoReachablePublicURL(t *testing.T) {
	for _, tt := range []struct{ name, url string }{
		{"Unset", ""},
		{"Loopback", "http://127.0.0.1:8080"},
		{"Localhost", "https://localhost"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := startHarness(t, testutil.SQLite, kubiya.Services{ServerURL: tt.url})
			c := newClient(t, h.URL, userKey(testutil.AdminToken))
			n := name("nourl")
			c.do(t, http.MethodPost, "/api/v3/runners/"+n).wantError(t, http.StatusPreconditionFailed, "failed_precondition", "--public-url")
			c.do(t, http.MethodGet, "/v1/runners/"+n+"/describe").wantStatus(t, http.StatusNotFound)
		})
	}
}
