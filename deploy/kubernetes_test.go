// Package deploy holds the files that deploy runyard; its test checks them.
package deploy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/runyard/runyard/internal/k8sschema"
)

type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Patches    []struct {
		Path string `json:"path"`
	} `json:"patches"`
	Images []struct {
		Name, NewTag string
	} `json:"images"`
	Labels []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
}

// TestKustomize checks the control plane's Kustomize base and example
// overlay: every file is listed, every listed file exists, and every object
// validates against the Kubernetes schemas (no kustomize runs here, so the
// objects are validated as written, before kustomize sets namespaces,
// labels and image tags). The Deployment must run several replicas on
// PostgreSQL with the secrets key from a Secret.
func TestKustomize(t *testing.T) {
	objects := map[string][]byte{} // kind/name -> object
	for _, dir := range []string{"kubernetes/base", "kubernetes/overlays/example"} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var k kustomization
			if err := yaml.UnmarshalStrict(b, &k); err != nil {
				t.Fatalf("kustomization.yaml: %v", err)
			}
			if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
				t.Fatalf("kustomization.yaml is %s %s", k.APIVersion, k.Kind)
			}
			listed := map[string]bool{"kustomization.yaml": true}
			for _, r := range k.Resources {
				listed[r] = true
				if strings.HasPrefix(r, "..") {
					continue
				}
				validateFile(t, filepath.Join(dir, r), objects)
			}
			for _, p := range k.Patches {
				listed[p.Path] = true
				// A strategic merge patch must name an object of the base.
				b, err := os.ReadFile(filepath.Join(dir, p.Path))
				if err != nil {
					t.Fatal(err)
				}
				var meta struct {
					Kind     string
					Metadata struct{ Name string }
				}
				if err := yaml.Unmarshal(b, &meta); err != nil {
					t.Fatal(err)
				}
				if _, ok := objects[meta.Kind+"/"+meta.Metadata.Name]; !ok {
					t.Errorf("patch %s names %s/%s, which the base does not have", p.Path, meta.Kind, meta.Metadata.Name)
				}
				validateFile(t, filepath.Join(dir, p.Path), map[string][]byte{})
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
			for _, f := range files {
				if !listed[filepath.Base(f)] {
					t.Errorf("%s is not listed in %s/kustomization.yaml", f, dir)
				}
			}
		})
	}

	var d struct {
		Spec struct {
			Replicas int
			Template struct {
				Spec struct {
					Containers []struct {
						Image string
						Args  []string
						Env   []struct {
							Name      string
							ValueFrom *struct {
								SecretKeyRef *struct{ Name, Key string } `json:"secretKeyRef"`
							} `json:"valueFrom"`
						}
					}
				}
			}
		}
	}
	if err := yaml.Unmarshal(objects["Deployment/runyard-control-plane"], &d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Replicas < 2 {
		t.Errorf("replicas %d: want several", d.Spec.Replicas)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if !strings.HasPrefix(c.Image, "ghcr.io/runyard/runyard:") {
		t.Errorf("image %q is not the Dockerfile's", c.Image)
	}
	if !slices.Contains(c.Args, "--config=/etc/runyard/secret/config.yaml") || !slices.Contains(c.Args, "--public-url=$(RUNYARD_PUBLIC_URL)") {
		t.Errorf("args %q: want the database from the Secret's config file and a public URL", c.Args)
	}
	if !slices.ContainsFunc(c.Env, func(e struct {
		Name      string
		ValueFrom *struct {
			SecretKeyRef *struct{ Name, Key string } `json:"secretKeyRef"`
		} `json:"valueFrom"`
	}) bool {
		return e.Name == "RUNYARD_SECRETS_KEY" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
	}) {
		t.Errorf("RUNYARD_SECRETS_KEY does not come from a Secret: %+v", c.Env)
	}
	var secret struct {
		StringData map[string]string `json:"stringData"`
	}
	if err := yaml.Unmarshal(objects["Secret/runyard-control-plane"], &secret); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(secret.StringData["config.yaml"], "database: postgres://") {
		t.Errorf("the example Secret's config.yaml names no PostgreSQL database: %q", secret.StringData["config.yaml"])
	}
	for _, want := range []string{"Service/runyard-control-plane", "Ingress/runyard-control-plane", "PodDisruptionBudget/runyard-control-plane", "ConfigMap/runyard-control-plane"} {
		if _, ok := objects[want]; !ok {
			t.Errorf("no %s", want)
		}
	}
}

// validateFile validates every object of a YAML file against the schemas
// and records it in objects by kind and name.
func validateFile(t *testing.T, path string, objects map[string][]byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k8sschema.ValidateStream(b); err != nil {
		t.Errorf("%s does not validate against Kubernetes %s: %v", path, k8sschema.Release, err)
	}
	for _, doc := range strings.Split("\n"+string(b), "\n---\n") {
		var meta struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil || meta.Kind == "" {
			continue
		}
		objects[meta.Kind+"/"+meta.Metadata.Name] = []byte(doc)
	}
}
