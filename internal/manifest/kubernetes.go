// Package manifest renders the deployment files of a runner. Kubernetes
// renders the YAML that `kubectl apply -f` takes: a namespace, a service
// account with a least-privilege role, a Secret holding the runner's one-time
// exchange token, and a Deployment that runs `runyard runner`.
package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// DefaultImage is the image the Deployment runs unless Options.Image says
// otherwise. No runyard image is published yet: until one is, build the
// binary into an image of your own and pass it as Image.
const DefaultImage = "ghcr.io/runyard/runyard:latest"

// DefaultNamespace is the Kubernetes namespace runners are deployed to.
const DefaultNamespace = "runyard"

// StateDir is where the runner keeps its credentials and key pair inside the
// container.
const StateDir = "/var/lib/runyard-runner"

// ExchangeTokenEnv is the variable the Secret's token reaches the runner in;
// the container's args refer to it, so the token never appears in the
// Deployment itself.
const ExchangeTokenEnv = "RUNYARD_EXCHANGE_TOKEN"

// HealthPort is where the runner container serves /healthz and /readyz.
const HealthPort = 8081

// secretKey is the key of the exchange token in the Secret.
const secretKey = "exchange-token"

// Options describe one runner's deployment.
type Options struct {
	// RunnerName is the runner's name in runyard; Kubernetes object names
	// derive from it.
	RunnerName string
	// ServerURL is the control plane the runner dials, e.g.
	// https://runyard.example.com.
	ServerURL string
	// ExchangeToken is the runner's one-time token (ryd_ex_...).
	ExchangeToken string
	// Namespace defaults to DefaultNamespace, Image to DefaultImage.
	Namespace string
	Image     string
}

func (o *Options) validate() error {
	if o.RunnerName == "" {
		return errors.New("manifest: runner name is required")
	}
	if o.ExchangeToken == "" {
		return errors.New("manifest: exchange token is required")
	}
	u, err := url.Parse(o.ServerURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("manifest: server URL %q must be an absolute http or https URL", o.ServerURL)
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if !isDNSLabel(o.Namespace) {
		return fmt.Errorf("manifest: namespace %q is not a valid Kubernetes name", o.Namespace)
	}
	if o.Image == "" {
		o.Image = DefaultImage
	}
	return nil
}

// Objects are the Kubernetes objects of one runner, in the order they are
// applied: the namespace first, the Deployment last.
type Objects struct {
	Namespace      *corev1.Namespace
	ServiceAccount *corev1.ServiceAccount
	Role           *rbacv1.Role
	RoleBinding    *rbacv1.RoleBinding
	Secret         *corev1.Secret
	Deployment     *appsv1.Deployment
}

// List returns the objects in apply order.
func (o *Objects) List() []any {
	return []any{o.Namespace, o.ServiceAccount, o.Role, o.RoleBinding, o.Secret, o.Deployment}
}

// ObjectName is the name of a runner's Kubernetes objects:
// "runyard-runner-" and the runner's name as a DNS label. A runner name that
// is not one already (runyard allows spaces and capitals) is lowered, its
// other characters become '-', and a short hash of the original keeps two
// such names apart.
func ObjectName(runnerName string) string {
	const prefix = "runyard-runner-"
	const maxLen = 63 // a DNS label; pod names derive from it
	if isDNSLabel(runnerName) && len(prefix)+len(runnerName) <= maxLen {
		return prefix + runnerName
	}
	var b strings.Builder
	for _, r := range strings.ToLower(runnerName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else if s := b.String(); s != "" && !strings.HasSuffix(s, "-") {
			b.WriteByte('-')
		}
	}
	sum := sha256.Sum256([]byte(runnerName))
	suffix := hex.EncodeToString(sum[:4])
	slug := strings.Trim(b.String(), "-")
	if room := maxLen - len(prefix) - len(suffix) - 1; len(slug) > room {
		slug = strings.TrimRight(slug[:room], "-")
	}
	if slug == "" {
		return prefix + suffix
	}
	return prefix + slug + "-" + suffix
}

func isDNSLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !((r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-') {
			return false
		}
	}
	return true
}

// Build returns the typed objects of one runner.
func Build(o Options) (*Objects, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	name := ObjectName(o.RunnerName)
	labels := map[string]string{
		"app.kubernetes.io/name":       "runyard-runner",
		"app.kubernetes.io/instance":   name,
		"app.kubernetes.io/managed-by": "runyard",
	}
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name:      name,
			Namespace: o.Namespace,
			Labels:    labels,
			// The runner's own name may not be a valid label value, so it
			// is an annotation.
			Annotations: map[string]string{"runyard.dev/runner-name": o.RunnerName},
		}
	}
	objs := &Objects{
		Namespace: &corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: o.Namespace},
		},
		ServiceAccount: &corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: meta(),
		},
		// Least privilege: the daemon does not call the Kubernetes API yet.
		// Reading the pods of its own namespace is what the agent manager
		// will need to see the pods it runs; nothing cluster-wide, nothing
		// that writes.
		Role: &rbacv1.Role{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
			ObjectMeta: meta(),
			Rules: []rbacv1.PolicyRule{{
				APIGroups: []string{""},
				Resources: []string{"pods"},
				Verbs:     []string{"get", "list"},
			}},
		},
		RoleBinding: &rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: meta(),
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: o.Namespace}},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		},
		Secret: &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: meta(),
			Type:       corev1.SecretTypeOpaque,
			StringData: map[string]string{secretKey: o.ExchangeToken},
		},
		Deployment: deployment(o, name, labels, meta()),
	}
	return objs, nil
}

func deployment(o Options, name string, labels map[string]string, meta metav1.ObjectMeta) *appsv1.Deployment {
	replicas := int32(1)
	nonRoot := true
	uid := int64(65532) // the "nonroot" user of distroless images
	noEscalation := false
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			// One runner identity is one process: a second replica would
			// fight the first for the runner's stream.
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			// Recreate, not RollingUpdate: during a rolling update the old
			// and the new pod would both hold the identity and replace each
			// other's stream.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: name,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   &nonRoot,
						RunAsUser:      &uid,
						RunAsGroup:     &uid,
						FSGroup:        &uid,
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  "runner",
						Image: o.Image,
						Args: []string{
							"runner",
							"--server", o.ServerURL,
							"--state-dir", StateDir,
							// Kubernetes expands $(VAR) from the container's
							// env; the runner only uses the token on its
							// first start.
							"--exchange-token", "$(" + ExchangeTokenEnv + ")",
							"--health-addr", fmt.Sprintf(":%d", HealthPort),
						},
						Ports: []corev1.ContainerPort{{Name: "health", ContainerPort: HealthPort, Protocol: corev1.ProtocolTCP}},
						// Liveness is the daemon's loop making progress, not
						// its connection: a control plane that is away must
						// not restart every runner. Readiness is the
						// connection.
						LivenessProbe: &corev1.Probe{
							ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("health")}},
							PeriodSeconds:    20,
							FailureThreshold: 3,
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("health")}},
							PeriodSeconds: 10,
						},
						Env: []corev1.EnvVar{{
							Name: ExchangeTokenEnv,
							ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
								LocalObjectReference: corev1.LocalObjectReference{Name: name},
								Key:                  secretKey,
							}},
						}},
						VolumeMounts: []corev1.VolumeMount{{Name: "state", MountPath: StateDir}},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{
								corev1.ResourceCPU:    resource.MustParse("100m"),
								corev1.ResourceMemory: resource.MustParse("128Mi"),
							},
							Limits: corev1.ResourceList{
								corev1.ResourceCPU:    resource.MustParse("1"),
								corev1.ResourceMemory: resource.MustParse("1Gi"),
							},
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: &noEscalation,
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
					// emptyDir survives container restarts but not a new
					// pod: the exchange token is one-time, so a rescheduled
					// pod cannot register again and needs a new manifest. A
					// PersistentVolumeClaim here keeps the runner's identity
					// across pod restarts.
					Volumes: []corev1.Volume{{
						Name:         "state",
						VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
					}},
				},
			},
		},
	}
}

// Kubernetes renders a runner's objects as one YAML stream, documents
// separated by "---".
func Kubernetes(o Options) ([]byte, error) {
	objs, err := Build(o)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for i, obj := range objs.List() {
		doc, err := yaml.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("manifest: encode %T: %w", obj, err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(doc)
	}
	return buf.Bytes(), nil
}
