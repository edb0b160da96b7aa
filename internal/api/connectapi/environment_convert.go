package connectapi

import (
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/runners"
)

func environmentToProto(e *environments.Environment) *gitpodv1.Environment {
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
	return &gitpodv1.Environment{
		Id:       e.ID,
		Metadata: md,
		Spec:     environmentSpecToProto(&e.Spec),
		Status:   environmentStatusToProto(&e.Status),
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
	return &gitpodv1.EnvironmentSpec{
		SpecVersion:  s.SpecVersion,
		DesiredPhase: environmentPhase(s.DesiredPhase),
		Machine:      &gitpodv1.EnvironmentSpec_Machine{Session: s.Machine.Session, Class: s.Machine.Class},
		Content:      content,
		AutomationsFile: &gitpodv1.EnvironmentSpec_AutomationsFile{
			Session:             s.AutomationsFile.Session,
			AutomationsFilePath: s.AutomationsFile.Path,
			TriggerFilter:       triggersToProto(s.AutomationsFile.TriggerFilter),
		},
	}
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
	return in, nil
}

func environmentListFilter(f *gitpodv1.ListEnvironmentsRequest_Filter) (environments.ListFilter, error) {
	out := environments.ListFilter{RunnerIDs: f.GetRunnerIds(), CreatorIDs: f.GetCreatorIds()}
	var err error
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
