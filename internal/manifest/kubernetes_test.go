package manifest_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/runyard/runyard/internal/buildinfo"
	"github.com/runyard/runyard/internal/k8sschema"
	"github.com/runyard/runyard/internal/manifest"
)

func TestObjectName(t *testing.T) {
	tests := []struct {
		name, runner, want string
	}{
		{"DNSLabelKept", "runner-prod", "runyard-runner-runner-prod"},
		{"Lowered", "Production Runner", "runyard-runner-production-runner-"},
		{"OnlySymbols", "???", "runyard-runner-"},
		{"Long", strings.Repeat("a", 60), "runyard-runner-aaaa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := manifest.ObjectName(tt.runner)
			if !strings.HasPrefix(got, tt.want) {
				t.Fatalf("ObjectName(%q) = %q, want prefix %q", tt.runner, got, tt.want)
			}
			if len(got) > 63 || strings.HasSuffix(got, "-") || strings.ToLower(got) != got {
				t.Fatalf("ObjectName(%q) = %q: not a DNS label", tt.runner, got)
			}
		})
	}
	t.Run("DistinctForDistinctNames", func(t *testing.T) {
		a, b := manifest.ObjectName("My Runner"), manifest.ObjectName("my-runner")
		c := manifest.ObjectName("my runner")
		if a == b || a == c || b == c {
			t.Fatalf("names collide: %q %q %q", a, b, c)
		}
	})
}

func TestKubernetes(t *testing.T) {
	ok := manifest.Options{RunnerName: "r1-x", ServerURL: "https://cp.example.com", ExchangeToken: "ryd_ex_abc"}
	t.Run("OK", func(t *testing.T) {
		b, err := manifest.Kubernetes(ok)
		if err != nil {
			t.Fatal(err)
		}
		docs := strings.Split(string(b), "\n---\n")
		if got, want := len(docs), 8; got != want {
			t.Fatalf("%d documents, want %d:\n%s", got, want, b)
		}
		if !strings.HasPrefix(docs[0], "apiVersion: v1\nkind: Namespace\n") {
			t.Errorf("first document is not the namespace:\n%s", docs[0])
		}
	})
	t.Run("Image", func(t *testing.T) {
		o := ok
		o.Image = "registry.example.com/runyard:1.2.3"
		objs, err := manifest.Build(o)
		if err != nil {
			t.Fatal(err)
		}
		if got := objs.StatefulSet.Spec.Template.Spec.Containers[0].Image; got != o.Image {
			t.Fatalf("image %q, want %q", got, o.Image)
		}
	})
	t.Run("DefaultImageIsThisVersion", func(t *testing.T) {
		objs, err := manifest.Build(ok)
		if err != nil {
			t.Fatal(err)
		}
		want := "ghcr.io/runyard/runyard:" + buildinfo.ImageTag(buildinfo.Version())
		if got := objs.StatefulSet.Spec.Template.Spec.Containers[0].Image; got != want || manifest.DefaultImage() != want {
			t.Fatalf("image %q, want %q", got, want)
		}
	})
	t.Run("ValidAgainstKubernetesSchemas", func(t *testing.T) {
		for _, o := range []manifest.Options{ok, {RunnerName: "Prod Runner 1", ServerURL: "http://10.0.0.5:8080", ExchangeToken: "ryd_ex_x", Namespace: "ci", Image: "r.example.com/runyard:v1", StorageClass: "fast"}} {
			b, err := manifest.Kubernetes(o)
			if err != nil {
				t.Fatal(err)
			}
			n, err := k8sschema.ValidateStream(b)
			if err != nil {
				t.Fatalf("the manifest does not validate against Kubernetes %s:\n%v\n%s", k8sschema.Release, err, b)
			}
			if n != 8 {
				t.Fatalf("%d objects validated, want 8", n)
			}
		}
	})
	t.Run("KeepsIdentityAndIsLockedDown", func(t *testing.T) {
		objs, err := manifest.Build(ok)
		if err != nil {
			t.Fatal(err)
		}
		ss := objs.StatefulSet.Spec
		// The state dir is the claim template's volume: a rescheduled pod
		// mounts the same claim and finds its credentials.
		if len(ss.VolumeClaimTemplates) != 1 || ss.VolumeClaimTemplates[0].Name != "state" {
			t.Fatalf("claim templates %+v", ss.VolumeClaimTemplates)
		}
		pod := ss.Template.Spec
		for _, v := range pod.Volumes {
			if v.Name == "state" {
				t.Fatalf("state is a pod volume (%+v), not the claim", v)
			}
		}
		ctr := pod.Containers[0]
		if !slices.ContainsFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "state" && m.MountPath == manifest.StateDir }) {
			t.Fatalf("mounts %+v: want the claim at %s", ctr.VolumeMounts, manifest.StateDir)
		}
		sc := ctr.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
			t.Fatalf("security context %+v / %+v", sc, pod.SecurityContext)
		}
		if ctr.LivenessProbe.HTTPGet.Path != "/healthz" || ctr.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Fatalf("probes %+v %+v", ctr.LivenessProbe, ctr.ReadinessProbe)
		}
		if ctr.Resources.Limits.Memory().IsZero() || ctr.Resources.Requests.Cpu().IsZero() {
			t.Fatalf("resources %+v", ctr.Resources)
		}
		pdb := objs.PodDisruptionBudget.Spec
		if pdb.MaxUnavailable == nil || pdb.MaxUnavailable.IntValue() != 0 || pdb.Selector.MatchLabels["app.kubernetes.io/instance"] != objs.StatefulSet.Name {
			t.Fatalf("pod disruption budget %+v", pdb)
		}
	})
	errs := []struct {
		name string
		mut  func(*manifest.Options)
	}{
		{"ErrNoName", func(o *manifest.Options) { o.RunnerName = "" }},
		{"ErrNoToken", func(o *manifest.Options) { o.ExchangeToken = "" }},
		{"ErrRelativeServer", func(o *manifest.Options) { o.ServerURL = "/api" }},
		{"ErrServerScheme", func(o *manifest.Options) { o.ServerURL = "ftp://cp" }},
		{"ErrNoServer", func(o *manifest.Options) { o.ServerURL = "" }},
		{"ErrLoopback", func(o *manifest.Options) { o.ServerURL = "http://127.0.0.1:8080" }},
		{"ErrLoopbackV6", func(o *manifest.Options) { o.ServerURL = "http://[::1]:8080" }},
		{"ErrLocalhost", func(o *manifest.Options) { o.ServerURL = "http://localhost:8080" }},
		{"ErrUnspecified", func(o *manifest.Options) { o.ServerURL = "http://0.0.0.0:8080" }},
		{"ErrNamespace", func(o *manifest.Options) { o.Namespace = "Not_A_Label" }},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mut(&o)
			_, err := manifest.Kubernetes(o)
			if err == nil {
				t.Fatal("no error")
			}
			var urlErr *manifest.ServerURLError
			if errors.As(err, &urlErr) && !strings.Contains(err.Error(), "--public-url") {
				t.Fatalf("%v: does not say to set --public-url", err)
			}
		})
	}
}
