package k8sschema_test

import (
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/k8sschema"
)

// TestValidate checks that the schemas refuse what an API server refuses,
// so that a manifest test passing means something.
func TestValidate(t *testing.T) {
	const pod = `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
      - name: c
        image: i
        resources: {limits: {memory: 1Gi, cpu: 1}}
        ports: [{containerPort: 80}]
        livenessProbe: {httpGet: {path: /, port: http}}
`
	tests := []struct {
		name, doc, want string
	}{
		{"OK", pod, ""},
		{"ErrUnknownField", strings.Replace(pod, "image: i", "image: i\n        imagePullPolicyy: Always", 1), "imagePullPolicyy"},
		{"ErrWrongType", strings.Replace(pod, "containerPort: 80", "containerPort: [80]", 1), "containerPort"},
		{"ErrMissingRequired", strings.Replace(pod, "  selector: {matchLabels: {a: b}}\n", "", 1), "selector"},
		{"ErrUnknownKind", "apiVersion: apps/v1\nkind: Deploymentt\n", "Deploymentt"},
		{"ErrWrongGroup", strings.Replace(pod, "apps/v1", "extensions/v1beta1", 1), "extensions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := k8sschema.Validate([]byte(tt.doc))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want an error naming %q", err, tt.want)
			}
		})
	}
	t.Run("Stream", func(t *testing.T) {
		n, err := k8sschema.ValidateStream([]byte(pod + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n---\n"))
		if err != nil || n != 2 {
			t.Fatalf("ValidateStream = %d, %v", n, err)
		}
	})
}
