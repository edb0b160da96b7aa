package connectapi

import (
	"fmt"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/runners"
)

// environmentToProto converts e; portURL (nil: none) gives its ports'
// preview URLs.
func environmentToProto(e *environments.Environment, portURL func(envID string, port int32) string) *gitpodv1.Environment {
	md := &gitpodv1.EnvironmentMetadata{
		OrganizationId:     e.OrgID,
		Name:               e.Name,
		Creator:            subjectToProto(e.Creator),
		OriginalContextUrl: e.ContextURL,
		CreatedAt:          timestamppb.New(e.CreatedAt),
		RunnerId:           e.RunnerID,
	}
	if e.LastStartedAt != nil {
		md.LastStartedAt = timestamppb.New(*e.LastStartedAt)
	}
	// A prebuild's own environment, or one restored from a prebuild's
	// snapshot (the runner said so).
	md.PrebuildId = e.Spec.PrebuildID
	if c := e.Status.Content; c != nil && c.PrebuildID != "" {
		md.PrebuildId = c.PrebuildID
	}
	status := environmentStatusToProto(&e.Status)
	controlPlaneStatus(e, status, portURL)
	return &gitpodv1.Environment{
		Id:       e.ID,
		Metadata: md,
		Spec:     environmentSpecToProto(&e.Spec),
		Status:   status,
	}
}

// controlPlaneStatus adds to a runner's report what the control plane knows
// of an environment: its last activity, the inactivity stop's reason, and
// the ports of its spec (status.environmentUrls.ports, with their preview
// URLs when the control plane serves them: --preview-domain).
func controlPlaneStatus(e *environments.Environment, out *gitpodv1.EnvironmentStatus, portURL func(envID string, port int32) string) {
	if a := e.Activity; a != nil {
		out.ActivitySignal = &gitpodv1.EnvironmentActivitySignal{Source: a.Source, Timestamp: timestamppb.New(a.At)}
	}
	if e.Spec.TimedOut != "" {
		if out.Machine == nil {
			out.Machine = &gitpodv1.EnvironmentStatus_Machine{}
		}
		out.Machine.Timeout = e.Spec.TimedOut
	}
	if len(e.Spec.Ports) > 0 {
		urls := &gitpodv1.EnvironmentStatus_EnvironmentURLs{}
		for _, p := range e.Spec.Ports {
			u := ""
			if portURL != nil {
				u = portURL(e.ID, p.Port)
			}
			urls.Ports = append(urls.Ports, &gitpodv1.EnvironmentStatus_EnvironmentURLs_Port{Port: p.Port, Url: u})
		}
		out.EnvironmentUrls = urls
	}
}

func environmentPhase(p environments.Phase) gitpodv1.EnvironmentPhase {
	return enumOf[gitpodv1.EnvironmentPhase](gitpodv1.EnvironmentPhase_value, p)
}

func environmentSpecToProto(s *environments.Spec) *gitpodv1.EnvironmentSpec {
	content := &gitpodv1.EnvironmentSpec_Content{
		Session:     s.Content.Session,
		GitUsername: s.Content.GitUsername,
		GitEmail:    s.Content.GitEmail,
	}
	if len(s.Content.Initializers) > 0 {
		content.Initializer = &gitpodv1.EnvironmentInitializer{}
		for _, in := range s.Content.Initializers {
			spec := &gitpodv1.EnvironmentInitializer_Spec{}
			switch {
			case in.Git != nil:
				g := in.Git
				spec.Spec = &gitpodv1.EnvironmentInitializer_Spec_Git{Git: &gitpodv1.GitInitializer{
					RemoteUri:         g.RemoteURI,
					UpstreamRemoteUri: g.UpstreamRemoteURI,
					TargetMode:        enumOf[gitpodv1.GitInitializer_CloneTargetMode](gitpodv1.GitInitializer_CloneTargetMode_value, g.TargetMode),
					CloneTarget:       g.CloneTarget,
					CheckoutLocation:  g.CheckoutLocation,
				}}
			case in.ContextURL != nil:
				spec.Spec = &gitpodv1.EnvironmentInitializer_Spec_ContextUrl{ContextUrl: &gitpodv1.ContextURLInitializer{Url: *in.ContextURL}}
			}
			content.Initializer.Specs = append(content.Initializer.Specs, spec)
		}
	}
	out := &gitpodv1.EnvironmentSpec{
		SpecVersion:  s.SpecVersion,
		DesiredPhase: environmentPhase(s.DesiredPhase),
		Machine:      &gitpodv1.EnvironmentSpec_Machine{Session: s.Machine.Session, Class: s.Machine.Class},
		Content:      content,
		AutomationsFile: &gitpodv1.EnvironmentSpec_AutomationsFile{
			Session:             s.AutomationsFile.Session,
			AutomationsFilePath: s.AutomationsFile.Path,
			TriggerFilter:       triggersToProto(s.AutomationsFile.TriggerFilter),
		},
		Admission: enumOf[gitpodv1.AdmissionLevel](gitpodv1.AdmissionLevel_value, s.Admission),
	}
	for _, p := range s.Ports {
		out.Ports = append(out.Ports, &gitpodv1.EnvironmentSpec_Port{
			Port: p.Port, Name: p.Name, Admission: enumOf[gitpodv1.AdmissionLevel](gitpodv1.AdmissionLevel_value, p.Admission),
		})
	}
	for _, k := range s.SSHPublicKeys {
		out.SshPublicKeys = append(out.SshPublicKeys, &gitpodv1.EnvironmentSpec_SSHPublicKey{Id: k.ID, Value: k.Value})
	}
	if s.Timeout.Disconnected > 0 {
		out.Timeout = &gitpodv1.EnvironmentSpec_Timeout{Disconnected: durationpb.New(s.Timeout.Disconnected)}
	}
	return out
}

func contentPhase(p environments.ContentPhase) gitpodv1.EnvironmentStatus_ContentPhase {
	return enumOf[gitpodv1.EnvironmentStatus_ContentPhase](gitpodv1.EnvironmentStatus_ContentPhase_value, p)
}

func environmentStatusToProto(s *environments.Status) *gitpodv1.EnvironmentStatus {
	out := &gitpodv1.EnvironmentStatus{
		StatusVersion:  s.StatusVersion,
		Phase:          environmentPhase(s.Phase),
		FailureMessage: nilIfEmpty(s.FailureMessage),
		WarningMessage: nilIfEmpty(s.WarningMessage),
	}
	if a := s.RunnerACK; a != nil {
		out.RunnerAck = &gitpodv1.EnvironmentStatus_RunnerACK{
			SpecVersion: a.SpecVersion,
			StatusCode:  enumOf[gitpodv1.EnvironmentStatus_RunnerACK_StatusCode](gitpodv1.EnvironmentStatus_RunnerACK_StatusCode_value, a.StatusCode),
			Message:     a.Message,
		}
	}
	if m := s.Machine; m != nil {
		out.Machine = &gitpodv1.EnvironmentStatus_Machine{
			Session:        m.Session,
			Phase:          enumOf[gitpodv1.EnvironmentStatus_Machine_Phase](gitpodv1.EnvironmentStatus_Machine_Phase_value, m.Phase),
			FailureMessage: m.FailureMessage,
			WarningMessage: m.WarningMessage,
		}
	}
	if c := s.Content; c != nil {
		out.Content = &gitpodv1.EnvironmentStatus_Content{
			Session:                  c.Session,
			Phase:                    contentPhase(c.Phase),
			ContentLocationInMachine: c.Location,
			FailureMessage:           c.FailureMessage,
			WarningMessage:           c.WarningMessage,
		}
	}
	if a := s.AutomationsFile; a != nil {
		out.AutomationsFile = &gitpodv1.EnvironmentStatus_AutomationsFile{
			Session:                 a.Session,
			AutomationsFilePath:     a.Path,
			Phase:                   contentPhase(a.Phase),
			FailureMessage:          a.FailureMessage,
			AutomationsFilePresence: enumOf[gitpodv1.EnvironmentStatus_AutomationsFile_Presence](gitpodv1.EnvironmentStatus_AutomationsFile_Presence_value, a.Presence),
			WarningMessage:          a.WarningMessage,
		}
	}
	return out
}

// environmentInput converts a CreateEnvironmentRequest, refusing enum numbers
// that do not exist. The spec's specVersion is the environment's own and
// ignored.
func environmentInput(req *gitpodv1.CreateEnvironmentRequest) (environments.CreateInput, error) {
	in := environments.CreateInput{Name: req.Name}
	s := req.GetSpec()
	phase, err := enumName("spec.desiredPhase", s.GetDesiredPhase())
	if err != nil {
		return in, err
	}
	c := s.GetContent()
	af := s.GetAutomationsFile()
	in.Spec = environments.Spec{
		DesiredPhase: environments.Phase(phase),
		Machine:      environments.Machine{Session: s.GetMachine().GetSession(), Class: s.GetMachine().GetClass()},
		Content: environments.Content{
			Session: c.GetSession(), GitUsername: c.GetGitUsername(), GitEmail: c.GetGitEmail(),
		},
		AutomationsFile: environments.AutomationsFile{Session: af.GetSession(), Path: af.GetAutomationsFilePath()},
	}
	for i, spec := range c.GetInitializer().GetSpecs() {
		field := fmt.Sprintf("spec.content.initializer.specs[%d]", i)
		var init environments.Initializer
		switch m := spec.GetSpec().(type) {
		case *gitpodv1.EnvironmentInitializer_Spec_Git:
			g := m.Git
			mode, err := enumName(field+".git.targetMode", g.GetTargetMode())
			if err != nil {
				return in, err
			}
			init.Git = &environments.Git{
				RemoteURI:         g.GetRemoteUri(),
				UpstreamRemoteURI: g.GetUpstreamRemoteUri(),
				TargetMode:        environments.CloneTargetMode(mode),
				CloneTarget:       g.GetCloneTarget(),
				CheckoutLocation:  g.GetCheckoutLocation(),
			}
		case *gitpodv1.EnvironmentInitializer_Spec_ContextUrl:
			url := m.ContextUrl.GetUrl()
			init.ContextURL = &url
		}
		in.Spec.Content.Initializers = append(in.Spec.Content.Initializers, init)
	}
	if in.Spec.AutomationsFile.TriggerFilter, err = triggersFromProto("spec.automationsFile.triggerFilter", af.GetTriggerFilter()); err != nil {
		return in, err
	}
	if err := specFieldsFromProto(&in, s); err != nil {
		return in, err
	}
	return in, nil
}

// specFieldsFromProto converts spec.ports, sshPublicKeys, timeout,
// admission, and the fields the service refuses when set (devcontainer,
// secrets).
func specFieldsFromProto(in *environments.CreateInput, s *gitpodv1.EnvironmentSpec) error {
	admission, err := enumName("spec.admission", s.GetAdmission())
	if err != nil {
		return err
	}
	in.Spec.Admission = environments.Admission(admission)
	for i, p := range s.GetPorts() {
		a, err := enumName(fmt.Sprintf("spec.ports[%d].admission", i), p.GetAdmission())
		if err != nil {
			return err
		}
		in.Spec.Ports = append(in.Spec.Ports, environments.Port{Port: p.GetPort(), Name: p.GetName(), Admission: environments.Admission(a)})
	}
	for _, k := range s.GetSshPublicKeys() {
		in.Spec.SSHPublicKeys = append(in.Spec.SSHPublicKeys, environments.SSHPublicKey{ID: k.GetId(), Value: k.GetValue()})
	}
	if d := s.GetTimeout().GetDisconnected(); d != nil {
		if err := d.CheckValid(); err != nil {
			return apperr.Invalid("spec.timeout.disconnected", "must be a valid duration: %v", err)
		}
		in.Spec.Timeout.Disconnected = d.AsDuration()
	}
	if d := s.GetDevcontainer(); d != nil {
		in.Devcontainer = environments.Devcontainer{
			FilePath: d.GetDevcontainerFilePath(), DefaultImage: d.GetDefaultDevcontainerImage(),
			DotfilesRepository: d.GetDotfiles().GetRepository(),
		}
	}
	for _, sec := range s.GetSecrets() {
		in.Secrets = append(in.Secrets, environments.SpecSecret{ID: sec.GetId(), Name: sec.GetName()})
	}
	return nil
}

func environmentListFilter(f *gitpodv1.ListEnvironmentsRequest_Filter) (environments.ListFilter, error) {
	out := environments.ListFilter{RunnerIDs: f.GetRunnerIds(), CreatorIDs: f.GetCreatorIds(), ProjectIDs: f.GetProjectIds()}
	var err error
	if f != nil && f.ArchivalStatus != nil {
		status, err := enumName("filter.archivalStatus", f.GetArchivalStatus())
		if err != nil {
			return out, err
		}
		out.ArchivalStatus = status
	}
	if out.Phases, err = enumNames[environments.Phase]("filter.statusPhases", f.GetStatusPhases()); err != nil {
		return out, err
	}
	out.RunnerKinds, err = enumNames[runners.Kind]("filter.runnerKinds", f.GetRunnerKinds())
	return out, err
}

func classFilter(f *gitpodv1.ListEnvironmentClassesRequest_Filter) (environments.ClassFilter, error) {
	out := environments.ClassFilter{RunnerIDs: f.GetRunnerIds()}
	if f != nil {
		out.Enabled, out.CanCreate = f.Enabled, f.CanCreateEnvironments
	}
	var err error
	if out.RunnerKinds, err = enumNames[runners.Kind]("filter.runnerKinds", f.GetRunnerKinds()); err != nil {
		return out, err
	}
	out.RunnerProviders, err = enumNames[runners.Provider]("filter.runnerProviders", f.GetRunnerProviders())
	return out, err
}

func classToProto(c *environments.Class) *gitpodv1.EnvironmentClass {
	return &gitpodv1.EnvironmentClass{
		Id:          c.ID,
		DisplayName: c.DisplayName,
		Description: c.Description,
		RunnerId:    c.RunnerID,
		Enabled:     c.Enabled,
	}
}
