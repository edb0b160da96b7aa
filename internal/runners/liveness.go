package runners

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Phases follow from what the runner reports and from its silence:
//
//	CREATED ──first report──▶ ACTIVE ◀──component healthy again──▶ DEGRADED
//	                            │  ▲                                   │
//	          no renewal within │  │ renewal                           │ no renewal
//	               the timeout  ▼  │                                   ▼ within the timeout
//	                          INACTIVE ◀────────────────────────────────┘
//
//	any ──DeleteRunner (connected)──▶ DELETING ──daemon confirms──▶ DELETED
//	any ──DeleteRunner (forced, or never connected)──────────────▶ DELETED
//
// An INACTIVE runner keeps its work until it has been silent for longer
// than Service.LostAfter; then its work is failed for good (SweepLost) and
// it stays INACTIVE. Coming back (a renewal or a report) starts a new
// outage's clock.
//
// DELETING and DELETED are sticky: reports and renewals do not leave them.
// A DELETED runner is a tombstone (Runner.DeletedAt) until it is purged.

// Component health names, as Kubiya's API shows them.
const (
	ComponentRunner      = "runner"
	ComponentToolManager = "tool-manager"
	ComponentAgent       = "agent-manager"
)

// Component is one part of a runner that reports its health.
type Component struct {
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	Version string `json:"version,omitempty"`
	Message string `json:"message,omitempty"`
	GitSHA  string `json:"gitSha,omitempty"`
	Release string `json:"release,omitempty"`
}

// Report is what a runner daemon says about its host when it connects and
// whenever it changes.
type Report struct {
	Version      string       `json:"version,omitempty"`
	OS           string       `json:"os,omitempty"`
	Arch         string       `json:"arch,omitempty"`
	Hostname     string       `json:"hostname,omitempty"`
	Region       string       `json:"region,omitempty"`
	Labels       []string     `json:"labels,omitempty"`
	MaxPods      int          `json:"maxPods,omitempty"`
	Components   []Component  `json:"components,omitempty"`
	Capabilities []Capability `json:"capabilities,omitempty"`
	PublicKey    []byte       `json:"publicKey,omitempty"`
	Draining     bool         `json:"draining,omitempty"`
	// AgentTypes are the agent types whose command the runner can run.
	AgentTypes []string `json:"agentTypes,omitempty"`
	// AdditionalInfo are facts about the host (kernel, CPUs, memory, free
	// disk of the state dir).
	AdditionalInfo []FieldValue `json:"additionalInfo,omitempty"`
	// GatewayURL is the control plane URL the daemon's stream is connected
	// to, GatewayLatency the round trip it measured on that stream.
	GatewayURL     string        `json:"gatewayUrl,omitempty"`
	GatewayLatency time.Duration `json:"gatewayLatency,omitempty"`
	// LogURL and SupportBundleURL are where the control plane serves the
	// daemon's own log and a support bundle it makes on demand.
	LogURL           string `json:"logUrl,omitempty"`
	SupportBundleURL string `json:"supportBundleUrl,omitempty"`
	// Update is what the daemon's self-update is doing, or why the last
	// one failed; nil when it has nothing to tell.
	Update *UpdateReport `json:"update,omitempty"`
}

// UpdateReport is the state of a runner's self-update (the runner's
// internal/runner/update.go names the states).
type UpdateReport struct {
	State         string    `json:"state"`
	TargetVersion string    `json:"targetVersion,omitempty"`
	Failure       string    `json:"failure,omitempty"`
	FailedAt      time.Time `json:"failedAt,omitzero"`
}

// UpdateFailedState is the state of a runner whose last update failed.
const UpdateFailedState = "failed"

// updateFacts are the update's lines of status.additionalInfo.
func (u *UpdateReport) facts() []FieldValue {
	if u == nil || u.State == "" {
		return nil
	}
	out := []FieldValue{{Key: "update.state", Value: u.State}}
	if u.TargetVersion != "" {
		out = append(out, FieldValue{Key: "update.targetVersion", Value: u.TargetVersion})
	}
	if u.Failure != "" {
		out = append(out, FieldValue{Key: "update.failure", Value: u.Failure})
	}
	return out
}

// updateMessage is the status message of an ACTIVE runner whose last
// update failed, "" otherwise.
func (r *Report) updateMessage() string {
	if u := r.Update; u != nil && u.State == UpdateFailedState && u.Failure != "" {
		return fmt.Sprintf("update to %s failed, running %s: %s", u.TargetVersion, r.Version, u.Failure)
	}
	return ""
}

// unhealthy returns the first unhealthy component, if any.
func (r *Report) unhealthy() *Component {
	for i := range r.Components {
		if !r.Components[i].Healthy {
			return &r.Components[i]
		}
	}
	return nil
}

// ApplyReport records a runner's report received at now and sets its phase:
// DEGRADED while a component is unhealthy, ACTIVE otherwise.
func (r *Runner) ApplyReport(rep Report, now time.Time) {
	r.Report = rep
	r.Report.Labels = slices.Clone(rep.Labels)
	r.Status.Version = rep.Version
	r.Status.Region = rep.Region
	r.Status.Capabilities = rep.Capabilities
	r.Status.PublicKey = rep.PublicKey
	r.Status.SystemDetails = fmt.Sprintf("%s/%s %s", rep.OS, rep.Arch, rep.Hostname)
	r.Status.AdditionalInfo = append(slices.Clone(rep.AdditionalInfo), rep.Update.facts()...)
	r.Status.LogURL, r.Status.SupportBundleURL = rep.LogURL, rep.SupportBundleURL
	r.Status.Gateway = nil
	if rep.GatewayURL != "" {
		r.Status.Gateway = &GatewayInfo{Name: gatewayName(rep.GatewayURL), URL: rep.GatewayURL, Region: rep.Region, Latency: rep.GatewayLatency}
	}
	r.LastSeen = now
	r.refreshPhase()
}

// refreshPhase derives the phase of a runner that is alive.
func (r *Runner) refreshPhase() {
	if r.Status.Phase == PhaseDeleting || r.Status.Phase == PhaseDeleted {
		return
	}
	if c := r.Report.unhealthy(); c != nil {
		r.Status.Phase = PhaseDegraded
		r.Status.Message = fmt.Sprintf("component %s is unhealthy: %s", c.Name, c.Message)
		return
	}
	r.Status.Phase = PhaseActive
	r.Status.Message = r.Report.updateMessage()
}

// Renewal is one runner's latest renewal, as the control plane batches them.
type Renewal struct {
	OrgID    string
	RunnerID string
	At       time.Time
}

// ApplyRenewal records a renewal at t. An INACTIVE runner comes back.
func (r *Runner) ApplyRenewal(t time.Time) {
	if t.After(r.LastSeen) {
		r.LastSeen = t
	}
	if r.Status.Phase == PhaseInactive {
		r.refreshPhase()
	}
}

// Live reports whether the runner renewed within timeout of now.
func (r *Runner) Live(now time.Time, timeout time.Duration) bool {
	return !r.LastSeen.IsZero() && now.Sub(r.LastSeen) < timeout
}

// InactiveMessage is the status message of a runner that went silent.
func InactiveMessage(lastSeen time.Time, timeout time.Duration) string {
	return fmt.Sprintf("no renewal within %s (last at %s)", timeout, lastSeen.UTC().Format(time.RFC3339))
}

// LostMessage is why the work of a runner unreachable for longer than
// lostAfter failed.
func LostMessage(lostAfter time.Duration) string {
	return fmt.Sprintf("runner unreachable for more than %s", lostAfter)
}

// unreachableInfix is what every UnreachableMessage holds, so that a client
// can tell it from other messages (IsUnreachable).
const unreachableInfix = " unreachable since "

// UnreachableMessage says that r cannot be reached, or is empty while r is
// not INACTIVE. The work of an INACTIVE runner keeps its phase (it may well
// still run) and carries this message instead, until the runner comes back
// or the work is failed after LostAfter.
func (r *Runner) UnreachableMessage() string {
	if r == nil || r.Status.Phase != PhaseInactive {
		return ""
	}
	return fmt.Sprintf("runner %s%s%s", r.Name, unreachableInfix, r.LastSeen.UTC().Format(time.RFC3339))
}

// IsUnreachable reports whether msg is (or holds) an UnreachableMessage.
func IsUnreachable(msg string) bool {
	return strings.Contains(msg, "runner ") && strings.Contains(msg, unreachableInfix)
}

// markDeleted makes r the tombstone of a runner deleted at now; why ends
// its status message. The desired phase says DELETED too, so that nothing
// reading the spec mistakes the tombstone for a runner that takes work, and
// the write-only metrics password goes: nothing will send metrics for it.
func (r *Runner) markDeleted(now time.Time, why string) {
	r.DeletedAt, r.UpdatedAt = now, now
	r.Spec.DesiredPhase = PhaseDeleted
	r.Spec.Configuration.Metrics.Password = ""
	r.Status.Phase = PhaseDeleted
	r.Status.Message = DeletedMessage(now, why)
}

// DeletedMessage is the status message of a runner deleted at t; why says
// how.
func DeletedMessage(t time.Time, why string) string {
	return fmt.Sprintf("deleted at %s: %s", t.UTC().Format(time.RFC3339), why)
}

// gatewayName is the host of a control plane URL, the gateway's name.
func gatewayName(u string) string {
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return p.Host
	}
	return u
}
