package connectapi

import (
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/runners"
)

func subjectToProto(s identity.Subject) *gitpodv1.Subject {
	return &gitpodv1.Subject{Id: s.ID, Principal: gitpodv1.Principal(gitpodv1.Principal_value[string(s.Principal)])}
}

// runnerToProto renders a runner for any caller. The metrics password is
// write-only and never copied.
func runnerToProto(r *runners.Runner) *gitpodv1.Runner {
	c := r.Spec.Configuration
	cfg := &gitpodv1.RunnerConfiguration{
		Region:                        c.Region,
		ReleaseChannel:                gitpodv1.RunnerReleaseChannel(gitpodv1.RunnerReleaseChannel_value[string(c.ReleaseChannel)]),
		AutoUpdate:                    c.AutoUpdate,
		LogLevel:                      gitpodv1.LogLevel(gitpodv1.LogLevel_value[string(c.LogLevel)]),
		DevcontainerImageCacheEnabled: c.DevcontainerImageCacheEnabled,
		ContinuousProfiling:           c.ContinuousProfiling,
		EncryptedHoneycombApiKey:      c.EncryptedHoneycombAPIKey,
		Metrics: &gitpodv1.MetricsConfiguration{
			Enabled:               c.Metrics.Enabled,
			Url:                   c.Metrics.URL,
			Username:              c.Metrics.Username,
			ManagedMetricsEnabled: c.Metrics.ManagedMetricsEnabled,
			IncludeVerboseMetrics: c.Metrics.IncludeVerboseMetrics,
		},
	}
	if w := c.UpdateWindow; w != nil {
		cfg.UpdateWindow = &gitpodv1.UpdateWindow{StartHour: &w.StartHour, EndHour: &w.EndHour}
	}
	st := r.Status
	status := &gitpodv1.RunnerStatus{
		Version:          st.Version,
		SystemDetails:    st.SystemDetails,
		Phase:            gitpodv1.RunnerPhase(gitpodv1.RunnerPhase_value[string(st.Phase)]),
		Message:          st.Message,
		Region:           st.Region,
		LogUrl:           st.LogURL,
		PublicKey:        st.PublicKey,
		SupportBundleUrl: st.SupportBundleURL,
		LlmUrl:           st.LLMURL,
	}
	if !r.LastSeen.IsZero() {
		status.UpdatedAt = timestamppb.New(r.LastSeen)
	}
	for _, kv := range st.AdditionalInfo {
		status.AdditionalInfo = append(status.AdditionalInfo, &gitpodv1.FieldValue{Key: kv.Key, Value: kv.Value})
	}
	for _, cap := range st.Capabilities {
		status.Capabilities = append(status.Capabilities, gitpodv1.RunnerCapability(gitpodv1.RunnerCapability_value[string(cap)]))
	}
	if g := st.Gateway; g != nil {
		status.GatewayInfo = &gitpodv1.GatewayInfo{Gateway: &gitpodv1.Gateway{Name: g.Name, Url: g.URL, Region: g.Region}}
		// Unset until the runner measured its stream's round trip.
		if g.Latency > 0 {
			status.GatewayInfo.Latency = durationpb.New(g.Latency)
		}
	}
	return &gitpodv1.Runner{
		RunnerId:        r.ID,
		Name:            r.Name,
		Kind:            gitpodv1.RunnerKind(gitpodv1.RunnerKind_value[string(r.Kind)]),
		Provider:        gitpodv1.RunnerProvider(gitpodv1.RunnerProvider_value[string(r.Provider)]),
		RunnerManagerId: r.RunnerManagerID,
		Spec: &gitpodv1.RunnerSpec{
			Configuration: cfg,
			DesiredPhase:  gitpodv1.RunnerPhase(gitpodv1.RunnerPhase_value[string(r.Spec.DesiredPhase)]),
			Variant:       gitpodv1.RunnerVariant(gitpodv1.RunnerVariant_value[string(r.Spec.Variant)]),
		},
		Status:    status,
		Creator:   subjectToProto(r.Creator),
		CreatedAt: timestamppb.New(r.CreatedAt),
		UpdatedAt: timestamppb.New(r.UpdatedAt),
	}
}

// createInput converts a CreateRunnerRequest, refusing enum numbers that do
// not exist.
func createInput(req *gitpodv1.CreateRunnerRequest) (runners.CreateInput, error) {
	var in runners.CreateInput
	var err error
	in.Name, in.RunnerManagerID = req.GetName(), req.GetRunnerManagerId()
	kind, err := enumName("kind", req.GetKind())
	if err != nil {
		return in, err
	}
	provider, err := enumName("provider", req.GetProvider())
	if err != nil {
		return in, err
	}
	in.Kind, in.Provider = runners.Kind(kind), runners.Provider(provider)
	spec := req.GetSpec()
	phase, err := enumName("spec.desiredPhase", spec.GetDesiredPhase())
	if err != nil {
		return in, err
	}
	variant, err := enumName("spec.variant", spec.GetVariant())
	if err != nil {
		return in, err
	}
	in.Spec.DesiredPhase, in.Spec.Variant = runners.Phase(phase), runners.Variant(variant)
	c := spec.GetConfiguration()
	channel, err := enumName("spec.configuration.releaseChannel", c.GetReleaseChannel())
	if err != nil {
		return in, err
	}
	level, err := enumName("spec.configuration.logLevel", c.GetLogLevel())
	if err != nil {
		return in, err
	}
	m := c.GetMetrics()
	in.Spec.Configuration = runners.Configuration{
		Region:                        c.GetRegion(),
		ReleaseChannel:                runners.ReleaseChannel(channel),
		AutoUpdate:                    c.GetAutoUpdate(),
		LogLevel:                      runners.LogLevel(level),
		DevcontainerImageCacheEnabled: c.GetDevcontainerImageCacheEnabled(),
		ContinuousProfiling:           c.GetContinuousProfiling(),
		EncryptedHoneycombAPIKey:      c.GetEncryptedHoneycombApiKey(),
		Metrics: runners.Metrics{
			Enabled:               m.GetEnabled(),
			URL:                   m.GetUrl(),
			Username:              m.GetUsername(),
			Password:              m.GetPassword(),
			ManagedMetricsEnabled: m.GetManagedMetricsEnabled(),
			IncludeVerboseMetrics: m.GetIncludeVerboseMetrics(),
		},
	}
	if w := c.GetUpdateWindow(); w != nil {
		in.UpdateWindow = &runners.UpdateWindowInput{StartHour: w.StartHour, EndHour: w.EndHour}
	}
	return in, nil
}

// optEnum converts an optional enum field.
func optEnum[T ~string, E protoreflect.Enum](field string, v *E) (*T, error) {
	if v == nil {
		return nil, nil
	}
	name, err := enumName(field, *v)
	if err != nil {
		return nil, err
	}
	t := T(name)
	return &t, nil
}

func updateInput(req *gitpodv1.UpdateRunnerRequest) (runners.Update, error) {
	u := runners.Update{Name: req.Name}
	spec := req.GetSpec()
	var phase *gitpodv1.RunnerPhase
	if spec != nil {
		phase = spec.DesiredPhase
	}
	var err error
	if u.DesiredPhase, err = optEnum[runners.Phase]("spec.desiredPhase", phase); err != nil {
		return u, err
	}
	c := spec.GetConfiguration()
	if c == nil {
		return u, nil
	}
	cu := &u.Config
	cu.AutoUpdate, cu.DevcontainerImageCacheEnabled, cu.Region, cu.ContinuousProfiling =
		c.AutoUpdate, c.DevcontainerImageCacheEnabled, c.Region, c.ContinuousProfiling
	if cu.LogLevel, err = optEnum[runners.LogLevel]("spec.configuration.logLevel", c.LogLevel); err != nil {
		return u, err
	}
	if cu.ReleaseChannel, err = optEnum[runners.ReleaseChannel]("spec.configuration.releaseChannel", c.ReleaseChannel); err != nil {
		return u, err
	}
	if w := c.GetUpdateWindow(); w != nil {
		cu.UpdateWindow = &runners.UpdateWindowInput{StartHour: w.StartHour, EndHour: w.EndHour}
	}
	if m := c.GetMetrics(); m != nil {
		cu.Metrics = runners.MetricsUpdate{
			Enabled: m.Enabled, URL: m.Url, Username: m.Username, Password: m.Password,
			ManagedMetricsEnabled: m.ManagedMetricsEnabled, IncludeVerboseMetrics: m.IncludeVerboseMetrics,
		}
	}
	return u, nil
}

func listFilter(f *gitpodv1.ListRunnersRequest_Filter) (runners.ListFilter, error) {
	out := runners.ListFilter{CreatorIDs: f.GetCreatorIds()}
	for i, k := range f.GetKinds() {
		name, err := enumName(fmt.Sprintf("filter.kinds[%d]", i), k)
		if err != nil {
			return out, err
		}
		out.Kinds = append(out.Kinds, runners.Kind(name))
	}
	for i, p := range f.GetProviders() {
		name, err := enumName(fmt.Sprintf("filter.providers[%d]", i), p)
		if err != nil {
			return out, err
		}
		out.Providers = append(out.Providers, runners.Provider(name))
	}
	return out, nil
}
