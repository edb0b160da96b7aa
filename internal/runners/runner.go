// Package runners is the runner registry: what a runner is, which changes are
// valid, and the service every API surface calls to create, read, change and
// delete runners. Enum values are the gitpod.v1 names, so they read the same in
// the database, the API and the CLI.
package runners

import (
	"slices"
	"time"

	"github.com/runyard/runyard/internal/identity"
)

type Kind string

const (
	KindUnspecified        Kind = "RUNNER_KIND_UNSPECIFIED"
	KindLocal              Kind = "RUNNER_KIND_LOCAL"
	KindRemote             Kind = "RUNNER_KIND_REMOTE"
	KindLocalConfiguration Kind = "RUNNER_KIND_LOCAL_CONFIGURATION"
)

var Kinds = []Kind{KindLocal, KindRemote, KindLocalConfiguration}

type Provider string

const (
	ProviderUnspecified Provider = "RUNNER_PROVIDER_UNSPECIFIED"
	ProviderAWSEC2      Provider = "RUNNER_PROVIDER_AWS_EC2"
	ProviderLinuxHost   Provider = "RUNNER_PROVIDER_LINUX_HOST"
	ProviderDesktopMac  Provider = "RUNNER_PROVIDER_DESKTOP_MAC"
	ProviderManaged     Provider = "RUNNER_PROVIDER_MANAGED"
	ProviderGCP         Provider = "RUNNER_PROVIDER_GCP"
	ProviderDevAgent    Provider = "RUNNER_PROVIDER_DEV_AGENT"
)

var Providers = []Provider{ProviderAWSEC2, ProviderLinuxHost, ProviderDesktopMac, ProviderManaged, ProviderGCP, ProviderDevAgent}

// KindOf deduces a runner's kind from its provider: hosts a person owns are
// local, cloud and managed machines remote.
func KindOf(p Provider) Kind {
	switch p {
	case ProviderLinuxHost, ProviderDesktopMac, ProviderDevAgent:
		return KindLocal
	case ProviderAWSEC2, ProviderGCP, ProviderManaged:
		return KindRemote
	}
	return KindUnspecified
}

type Phase string

const (
	PhaseUnspecified Phase = "RUNNER_PHASE_UNSPECIFIED"
	PhaseCreated     Phase = "RUNNER_PHASE_CREATED"
	PhaseInactive    Phase = "RUNNER_PHASE_INACTIVE"
	PhaseActive      Phase = "RUNNER_PHASE_ACTIVE"
	PhaseDeleting    Phase = "RUNNER_PHASE_DELETING"
	PhaseDeleted     Phase = "RUNNER_PHASE_DELETED"
	PhaseDegraded    Phase = "RUNNER_PHASE_DEGRADED"
)

// DesiredPhases are the phases a user may ask for: ACTIVE takes work, INACTIVE
// drains.
var DesiredPhases = []Phase{PhaseActive, PhaseInactive}

type Variant string

const (
	VariantUnspecified Variant = "RUNNER_VARIANT_UNSPECIFIED"
	VariantStandard    Variant = "RUNNER_VARIANT_STANDARD"
	VariantEnterprise  Variant = "RUNNER_VARIANT_ENTERPRISE"
)

var Variants = []Variant{VariantUnspecified, VariantStandard, VariantEnterprise}

type ReleaseChannel string

const (
	ReleaseChannelUnspecified ReleaseChannel = "RUNNER_RELEASE_CHANNEL_UNSPECIFIED"
	ReleaseChannelStable      ReleaseChannel = "RUNNER_RELEASE_CHANNEL_STABLE"
	ReleaseChannelLatest      ReleaseChannel = "RUNNER_RELEASE_CHANNEL_LATEST"
)

var ReleaseChannels = []ReleaseChannel{ReleaseChannelUnspecified, ReleaseChannelStable, ReleaseChannelLatest}

type LogLevel string

const (
	LogLevelUnspecified LogLevel = "LOG_LEVEL_UNSPECIFIED"
	LogLevelDebug       LogLevel = "LOG_LEVEL_DEBUG"
	LogLevelInfo        LogLevel = "LOG_LEVEL_INFO"
	LogLevelWarn        LogLevel = "LOG_LEVEL_WARN"
	LogLevelError       LogLevel = "LOG_LEVEL_ERROR"
)

var LogLevels = []LogLevel{LogLevelUnspecified, LogLevelDebug, LogLevelInfo, LogLevelWarn, LogLevelError}

// Capability is a RUNNER_CAPABILITY_* name a runner reports.
type Capability string

// Runner is one registered runner.
type Runner struct {
	// ID is the runnerId of the Connect API, a UUID.
	ID string
	// Seq is the numeric id of the REST API and the list order.
	Seq             int64
	OrgID           string
	Name            string
	Kind            Kind
	Provider        Provider
	RunnerManagerID string
	Spec            Spec
	Status          Status
	Creator         identity.Subject
	CreatedAt       time.Time
	UpdatedAt       time.Time
	// Report is the daemon's last full report about its host.
	Report Report
	// LastSeen is the last renewal or report; zero if the daemon never
	// connected.
	LastSeen time.Time
	// DeletedAt is when the runner was deleted; zero while it exists. A
	// deleted runner is a tombstone: phase DELETED, no tokens, readable by
	// its ID alone (so that a client waiting for the deletion sees it
	// happen) until it is purged, and its name free for a new runner.
	DeletedAt time.Time
}

type Spec struct {
	Configuration Configuration `json:"configuration"`
	DesiredPhase  Phase         `json:"desiredPhase"`
	Variant       Variant       `json:"variant"`
}

type Configuration struct {
	Region                        string         `json:"region,omitempty"`
	ReleaseChannel                ReleaseChannel `json:"releaseChannel,omitempty"`
	AutoUpdate                    bool           `json:"autoUpdate,omitempty"`
	LogLevel                      LogLevel       `json:"logLevel,omitempty"`
	Metrics                       Metrics        `json:"metrics"`
	DevcontainerImageCacheEnabled bool           `json:"devcontainerImageCacheEnabled,omitempty"`
	UpdateWindow                  *UpdateWindow  `json:"updateWindow,omitempty"`
	ContinuousProfiling           bool           `json:"continuousProfiling,omitempty"`
	EncryptedHoneycombAPIKey      []byte         `json:"encryptedHoneycombApiKey,omitempty"`
}

type Metrics struct {
	Enabled  bool   `json:"enabled,omitempty"`
	URL      string `json:"url,omitempty"`
	Username string `json:"username,omitempty"`
	// Password is write-only: stored apart from the rest of the spec and never
	// returned by any API.
	Password              string `json:"-"`
	ManagedMetricsEnabled bool   `json:"managedMetricsEnabled,omitempty"`
	IncludeVerboseMetrics bool   `json:"includeVerboseMetrics,omitempty"`
}

// UpdateWindow is a daily UTC window for auto-updates.
type UpdateWindow struct {
	StartHour int32 `json:"startHour"`
	EndHour   int32 `json:"endHour"`
}

// Status is what the runner reports about itself.
type Status struct {
	// The status's updatedAt is Runner.LastSeen.
	Version       string `json:"version,omitempty"`
	SystemDetails string `json:"systemDetails,omitempty"`
	// Phase is stored in its own column, not in the status document.
	Phase            Phase        `json:"-"`
	Message          string       `json:"message,omitempty"`
	Region           string       `json:"region,omitempty"`
	AdditionalInfo   []FieldValue `json:"additionalInfo,omitempty"`
	Capabilities     []Capability `json:"capabilities,omitempty"`
	LogURL           string       `json:"logUrl,omitempty"`
	Gateway          *GatewayInfo `json:"gatewayInfo,omitempty"`
	PublicKey        []byte       `json:"publicKey,omitempty"`
	SupportBundleURL string       `json:"supportBundleUrl,omitempty"`
	LLMURL           string       `json:"llmUrl,omitempty"`
}

type FieldValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type GatewayInfo struct {
	Name    string        `json:"name"`
	URL     string        `json:"url"`
	Region  string        `json:"region,omitempty"`
	Latency time.Duration `json:"latency,omitempty"`
}

// Connected reports whether a runner daemon ever reported for this runner.
func (r *Runner) Connected() bool { return !r.LastSeen.IsZero() }

// Deleted reports whether r is a tombstone.
func (r *Runner) Deleted() bool { return !r.DeletedAt.IsZero() }

// Filter selects runners for Store.FindRunners.
type Filter struct {
	OrgID      string
	CreatorIDs []string
	Kinds      []Kind
	Providers  []Provider
	// Phases keeps runners in any of these phases (Status.Phase).
	Phases []Phase
	// NameContains keeps runners whose name contains it, ignoring the
	// case of ASCII letters.
	NameContains string
	// DesiredPhases keeps runners whose Spec.DesiredPhase is one of these:
	// INACTIVE is a runner being drained.
	DesiredPhases []Phase
	// After and Limit select a page by Seq; Limit zero means no limit.
	After int64
	Limit int
}

func oneOf[T comparable](v T, set []T) bool { return slices.Contains(set, v) }
