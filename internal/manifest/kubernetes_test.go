package manifest_test

import (
	"strings"
	"testing"

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
		if got, want := len(docs), 6; got != want {
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
		if got := objs.Deployment.Spec.Template.Spec.Containers[0].Image; got != o.Image {
			t.Fatalf("image %q, want %q", got, o.Image)
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
		{"ErrNamespace", func(o *manifest.Options) { o.Namespace = "Not_A_Label" }},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mut(&o)
			if _, err := manifest.Kubernetes(o); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
