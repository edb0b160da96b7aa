package runners

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// ValidateName checks a runner name: 3 to 127 characters, printable, no '/'.
func ValidateName(field, name string) error {
	n := utf8.RuneCountInString(name)
	if n < 3 || n > 127 {
		return apperr.Invalid(field, "must be 3 to 127 characters, got %d", n)
	}
	if strings.TrimSpace(name) != name {
		return apperr.Invalid(field, "must not begin or end with white space")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return apperr.Invalid(field, "must not contain control characters")
		}
	}
	// Kubiya's endpoints route by name as one URL path segment
	// (/api/v3/runners/{name}/health): a name with '/' could never be
	// reached there.
	if strings.ContainsRune(name, '/') {
		return apperr.Invalid(field, "must not contain '/', got %q", name)
	}
	return nil
}

func validateRegion(field, region string) error {
	if len(region) > 63 {
		return apperr.Invalid(field, "must be at most 63 characters")
	}
	for _, r := range region {
		if !(r == '-' || r == '_' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return apperr.Invalid(field, "may hold only letters, digits, '-', '_' and '.'")
		}
	}
	return nil
}

func validateMetrics(field string, m *Metrics) error {
	if m.URL != "" {
		u, err := url.Parse(m.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return apperr.Invalid(field+".url", "must be an http or https URL")
		}
	}
	if len(m.Username) > 256 {
		return apperr.Invalid(field+".username", "must be at most 256 characters")
	}
	if len(m.Password) > 1024 {
		return apperr.Invalid(field+".password", "must be at most 1024 characters")
	}
	// PostgreSQL text cannot hold NUL, and no collector takes control
	// characters in credentials.
	if strings.IndexFunc(m.Password, unicode.IsControl) >= 0 {
		return apperr.Invalid(field+".password", "must not contain control characters")
	}
	if strings.IndexFunc(m.Username, unicode.IsControl) >= 0 {
		return apperr.Invalid(field+".username", "must not contain control characters")
	}
	return nil
}

// normalizeUpdateWindow checks the hours and fills endHour. explicitEnd tells
// whether the caller set endHour; without it endHour is startHour+2.
func normalizeUpdateWindow(field string, w *UpdateWindow, hasStart, explicitEnd bool) error {
	if !hasStart {
		return apperr.Invalid(field+".startHour", "is required when updateWindow is set")
	}
	if w.StartHour < 0 || w.StartHour > 23 {
		return apperr.Invalid(field+".startHour", "must be an hour from 0 to 23, got %d", w.StartHour)
	}
	if !explicitEnd {
		w.EndHour = (w.StartHour + 2) % 24
	}
	if w.EndHour < 0 || w.EndHour > 23 {
		return apperr.Invalid(field+".endHour", "must be an hour from 0 to 23, got %d", w.EndHour)
	}
	return nil
}

func validateConfiguration(field string, c *Configuration) error {
	if err := validateRegion(field+".region", c.Region); err != nil {
		return err
	}
	if c.ReleaseChannel == "" {
		c.ReleaseChannel = ReleaseChannelUnspecified
	}
	if !oneOf(c.ReleaseChannel, ReleaseChannels) {
		return apperr.Invalid(field+".releaseChannel", "unknown value %q", c.ReleaseChannel)
	}
	if c.LogLevel == "" {
		c.LogLevel = LogLevelUnspecified
	}
	if !oneOf(c.LogLevel, LogLevels) {
		return apperr.Invalid(field+".logLevel", "unknown value %q", c.LogLevel)
	}
	if len(c.EncryptedHoneycombAPIKey) > 4096 {
		return apperr.Invalid(field+".encryptedHoneycombApiKey", "must be at most 4096 bytes")
	}
	return validateMetrics(field+".metrics", &c.Metrics)
}

// UpdateWindowInput carries presence, which the JSON and protobuf encodings
// keep for the two optional hours.
type UpdateWindowInput struct {
	StartHour *int32
	EndHour   *int32
}

// CreateInput is a request to register a runner.
type CreateInput struct {
	Name            string
	Kind            Kind
	Provider        Provider
	RunnerManagerID string
	Spec            Spec
	// UpdateWindow overrides Spec.Configuration.UpdateWindow so that a missing
	// endHour can be told from endHour 0.
	UpdateWindow *UpdateWindowInput
	// NameField is the request field or parameter the name came from, for
	// errors (Kubiya's runner_name); empty means name.
	NameField string
}

// validate checks in and fills defaults: the kind deduced from the provider,
// desiredPhase ACTIVE, endHour startHour+2.
func (in *CreateInput) validate() error {
	field := in.NameField
	if field == "" {
		field = "name"
	}
	if err := ValidateName(field, in.Name); err != nil {
		return err
	}
	if in.Kind == "" {
		in.Kind = KindUnspecified
	}
	if in.Provider == "" {
		in.Provider = ProviderUnspecified
	}
	hasKind, hasProvider := in.Kind != KindUnspecified, in.Provider != ProviderUnspecified
	switch {
	case hasKind && hasProvider:
		return apperr.Invalid("kind", "must not be set together with provider: the kind is deduced from the provider")
	case !hasKind && !hasProvider:
		return apperr.Invalid("provider", "is required (or, for older clients, kind)")
	case hasProvider:
		if !oneOf(in.Provider, Providers) {
			return apperr.Invalid("provider", "unknown value %q", in.Provider)
		}
		in.Kind = KindOf(in.Provider)
	default:
		if !oneOf(in.Kind, Kinds) {
			return apperr.Invalid("kind", "unknown value %q", in.Kind)
		}
	}
	if in.Provider == ProviderManaged {
		if err := identity.ValidateUUID("runnerManagerId", in.RunnerManagerID); err != nil {
			if in.RunnerManagerID == "" {
				return apperr.Invalid("runnerManagerId", "is required for managed runners")
			}
			return err
		}
	} else if in.RunnerManagerID != "" {
		return apperr.Invalid("runnerManagerId", "must be set only for managed runners")
	}

	spec := &in.Spec
	switch spec.DesiredPhase {
	case "", PhaseUnspecified:
		spec.DesiredPhase = PhaseActive
	default:
		if !oneOf(spec.DesiredPhase, DesiredPhases) {
			return apperr.Invalid("spec.desiredPhase", "must be RUNNER_PHASE_ACTIVE or RUNNER_PHASE_INACTIVE, got %q", spec.DesiredPhase)
		}
	}
	if spec.Variant == "" {
		spec.Variant = VariantUnspecified
	}
	if !oneOf(spec.Variant, Variants) {
		return apperr.Invalid("spec.variant", "unknown value %q", spec.Variant)
	}
	if in.UpdateWindow != nil {
		w := &UpdateWindow{}
		if in.UpdateWindow.StartHour != nil {
			w.StartHour = *in.UpdateWindow.StartHour
		}
		if in.UpdateWindow.EndHour != nil {
			w.EndHour = *in.UpdateWindow.EndHour
		}
		if err := normalizeUpdateWindow("spec.configuration.updateWindow", w, in.UpdateWindow.StartHour != nil, in.UpdateWindow.EndHour != nil); err != nil {
			return err
		}
		spec.Configuration.UpdateWindow = w
	}
	return validateConfiguration("spec.configuration", &spec.Configuration)
}

// Update is a partial change to a runner; nil fields keep their value.
type Update struct {
	Name         *string
	DesiredPhase *Phase
	Config       ConfigUpdate
}

type ConfigUpdate struct {
	AutoUpdate                    *bool
	DevcontainerImageCacheEnabled *bool
	LogLevel                      *LogLevel
	ReleaseChannel                *ReleaseChannel
	Region                        *string
	UpdateWindow                  *UpdateWindowInput
	ContinuousProfiling           *bool
	Metrics                       MetricsUpdate
}

type MetricsUpdate struct {
	Enabled               *bool
	URL                   *string
	Username              *string
	Password              *string
	ManagedMetricsEnabled *bool
	IncludeVerboseMetrics *bool
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// apply validates u and applies it to r.
func (u *Update) apply(r *Runner) error {
	if u.Name != nil {
		if err := ValidateName("name", *u.Name); err != nil {
			return err
		}
		r.Name = *u.Name
	}
	if u.DesiredPhase != nil {
		if !oneOf(*u.DesiredPhase, DesiredPhases) {
			return apperr.Invalid("spec.desiredPhase", "must be RUNNER_PHASE_ACTIVE or RUNNER_PHASE_INACTIVE, got %q", *u.DesiredPhase)
		}
		r.Spec.DesiredPhase = *u.DesiredPhase
	}
	c, cu := &r.Spec.Configuration, &u.Config
	set(&c.AutoUpdate, cu.AutoUpdate)
	set(&c.DevcontainerImageCacheEnabled, cu.DevcontainerImageCacheEnabled)
	set(&c.LogLevel, cu.LogLevel)
	set(&c.ReleaseChannel, cu.ReleaseChannel)
	set(&c.Region, cu.Region)
	set(&c.ContinuousProfiling, cu.ContinuousProfiling)
	m, mu := &c.Metrics, &cu.Metrics
	set(&m.Enabled, mu.Enabled)
	set(&m.URL, mu.URL)
	set(&m.Username, mu.Username)
	set(&m.Password, mu.Password)
	set(&m.ManagedMetricsEnabled, mu.ManagedMetricsEnabled)
	set(&m.IncludeVerboseMetrics, mu.IncludeVerboseMetrics)
	if cu.UpdateWindow != nil {
		w := &UpdateWindow{}
		set(&w.StartHour, cu.UpdateWindow.StartHour)
		set(&w.EndHour, cu.UpdateWindow.EndHour)
		if err := normalizeUpdateWindow("spec.configuration.updateWindow", w, cu.UpdateWindow.StartHour != nil, cu.UpdateWindow.EndHour != nil); err != nil {
			return err
		}
		c.UpdateWindow = w
	}
	return validateConfiguration("spec.configuration", c)
}
