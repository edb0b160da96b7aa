// Package manifest renders the deployment files of a runner. Kubernetes
// renders the YAML that `kubectl apply -f` takes: a namespace, a service
// account with a least-privilege role, a Secret holding the runner's one-time
// exchange token, a StatefulSet that runs `runyard runner` with its state on
// a PersistentVolumeClaim (so a rescheduled pod keeps the runner's identity:
// the exchange token is used once, on the first start), a headless Service
// naming its health port, and a PodDisruptionBudget.
package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/runyard/runyard/internal/buildinfo"
)

// ImageRepository is where the Dockerfile's image is published.
const ImageRepository = "ghcr.io/runyard/runyard"

// DefaultImage is the image the StatefulSet runs unless Options.Image says
// otherwise: the Dockerfile's image with this binary's version as its tag
// ("latest" for a build nobody stamped), so a control plane hands out
// runners of its own version.
func DefaultImage() string { return ImageRepository + ":" + buildinfo.ImageTag(buildinfo.Version()) }

// DefaultStateSize is the size of the runner's state volume: credentials,
// records and the logs its services and executions keep.
const DefaultStateSize = "1Gi"

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
	// Namespace defaults to DefaultNamespace, Image to DefaultImage().
	Namespace string
	Image     string
	// StorageClass is the state volume's storage class; empty means the
	// cluster's default.
	StorageClass string
}

// ServerURLError is a control plane URL a runner in a cluster cannot reach.
type ServerURLError struct {
	URL, Reason string
}

func (e *ServerURLError) Error() string {
	return fmt.Sprintf("the runner would dial %q, %s: start the control plane with --public-url set to the URL the cluster reaches it at (e.g. https://runyard.example.com)", e.URL, e.Reason)
}

// CheckServerURL refuses a URL a runner in a cluster could not dial: not an
// absolute http(s) URL, or a loopback, unspecified or "localhost" host,
// which in a pod names the pod itself.
func CheckServerURL(s string) error {
	if s == "" {
		return &ServerURLError{URL: s, Reason: "which is empty"}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &ServerURLError{URL: s, Reason: "which is not an absolute http or https URL"}
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return &ServerURLError{URL: s, Reason: "a loopback name that in a pod means the pod itself"}
	}
	if ip, err := netip.ParseAddr(host); err == nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		return &ServerURLError{URL: s, Reason: "a loopback address that in a pod means the pod itself"}
	}
	return nil
}

func (o *Options) validate() error {
	if o.RunnerName == "" {
		return errors.New("manifest: runner name is required")
	}
	if o.ExchangeToken == "" {
		return errors.New("manifest: exchange token is required")
	}
	if err := CheckServerURL(o.ServerURL); err != nil {
		return err
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if !isDNSLabel(o.Namespace) {
		return fmt.Errorf("manifest: namespace %q is not a valid Kubernetes name", o.Namespace)
	}
	if o.Image == "" {
		o.Image = DefaultImage()
	}
	return nil
}

// Objects are the Kubernetes objects of one runner, in the order they are
// applied: the namespace first, the StatefulSet last.
type Objects struct {
	Namespace           *corev1.Namespace
	ServiceAccount      *corev1.ServiceAccount
	Role                *rbacv1.Role
	RoleBinding         *rbacv1.RoleBinding
	Secret              *corev1.Secret
	Service             *corev1.Service
	PodDisruptionBudget *policyv1.PodDisruptionBudget
	StatefulSet         *appsv1.StatefulSet
}

// List returns the objects in apply order.
func (o *Objects) List() []any {
	return []any{o.Namespace, o.ServiceAccount, o.Role, o.RoleBinding, o.Secret, o.Service, o.PodDisruptionBudget, o.StatefulSet}
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
	zero := intstr.FromInt32(0)
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
		// Headless: it gives the StatefulSet's pod a stable DNS name and
		// names the health port for scrapers; nothing load-balances a
		// runner.
		Service: &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: meta(),
			Spec: corev1.ServiceSpec{
				ClusterIP: corev1.ClusterIPNone,
				Selector:  labels,
				Ports:     []corev1.ServicePort{{Name: "health", Port: HealthPort, TargetPort: intstr.FromString("health"), Protocol: corev1.ProtocolTCP}},
			},
		},
		// The runner's services, task executions and agent pods run inside
		// its pod: an eviction kills them. maxUnavailable 0 makes a node
		// drain wait until an operator drains the runner in runyard
		// (`runyard runners update ID --desired-phase inactive`) and deletes the pod.
		PodDisruptionBudget: &policyv1.PodDisruptionBudget{
			TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
			ObjectMeta: meta(),
			Spec: policyv1.PodDisruptionBudgetSpec{
				MaxUnavailable: &zero,
				Selector:       &metav1.LabelSelector{MatchLabels: labels},
			},
		},
		StatefulSet: statefulSet(o, name, labels, meta()),
	}
	return objs, nil
}

func statefulSet(o Options, name string, labels map[string]string, meta metav1.ObjectMeta) *appsv1.StatefulSet {
	replicas := int32(1)
	yes, no := true, false
	uid := int64(65532) // the Dockerfile's runyard user
	var class *string
	if o.StorageClass != "" {
		class = &o.StorageClass
	}
	return &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: meta,
		Spec: appsv1.StatefulSetSpec{
			// One runner identity is one process: a second replica would
			// fight the first for the runner's stream. A StatefulSet never
			// runs two pods of one ordinal at once, and its pod keeps its
			// volume wherever it is rescheduled.
			Replicas:    &replicas,
			ServiceName: name,
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			// The pod is replaced only when deleted (after the runner is
			// drained), never by an edit of the template in mid-work.
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
			PodManagementPolicy: appsv1.OrderedReadyPodManagement,
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				// The volume holds the runner's credentials: deleting the
				// StatefulSet keeps it, so applying the manifest again
				// brings back the same runner.
				WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
				WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
				ObjectMeta: metav1.ObjectMeta{Name: "state", Labels: labels},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					StorageClassName: class,
					Resources: corev1.VolumeResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(DefaultStateSize)},
					},
				},
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: name,
					// The runner does not call the Kubernetes API.
					AutomountServiceAccountToken: &no,
					// Long enough for the runner to stop its services
					// gracefully (their own stop grace is 2 minutes).
					TerminationGracePeriodSeconds: ptr(int64(150)),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   &yes,
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
							// first start, later ones find their
							// credentials on the volume.
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
							TimeoutSeconds:   5,
							FailureThreshold: 3,
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("health")}},
							PeriodSeconds:  10,
							TimeoutSeconds: 5,
						},
						Env: []corev1.EnvVar{{
							Name: ExchangeTokenEnv,
							ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
								LocalObjectReference: corev1.LocalObjectReference{Name: name},
								Key:                  secretKey,
							}},
						}, {Name: "HOME", Value: homeDir}, {Name: "TMPDIR", Value: "/tmp"}},
						// The root filesystem is read-only: the runner
						// writes its state to the volume, and the work it
						// runs writes to HOME and /tmp, both emptyDirs.
						VolumeMounts: []corev1.VolumeMount{
							{Name: "state", MountPath: StateDir},
							{Name: "home", MountPath: homeDir},
							{Name: "tmp", MountPath: "/tmp"},
						},
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
							AllowPrivilegeEscalation: &no,
							ReadOnlyRootFilesystem:   &yes,
							RunAsNonRoot:             &yes,
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "home", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
				},
			},
		},
	}
}

// homeDir is the Dockerfile's runyard user's home.
const homeDir = "/home/runyard"

func ptr[T any](v T) *T { return &v }

// Kubernetes renders a runner's objects as one YAML stream, documents
// separated by "---".
func Kubernetes(o Options) ([]byte, error) {
	objs, err := Build(o)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for i, obj := range objs.List() {
		doc, err := marshalWithoutStatus(obj)
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

// marshalWithoutStatus is obj's YAML without its status, which the API
// server owns and `kubectl apply` ignores.
func marshalWithoutStatus(obj any) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	return yaml.Marshal(m)
}
