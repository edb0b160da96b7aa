package connectapi

import (
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/automations/spec"
)

// The domain keeps enum values as their gitpod.v1 names, so converting to
// the wire is a lookup; a name the enum lacks (which the domain never
// stores) becomes UNSPECIFIED.
func enumOf[E ~int32, S ~string](values map[string]int32, s S) E {
	return E(values[string(s)])
}

// enumNames converts a repeated enum field, refusing numbers the enum does
// not define and naming the offending element.
func enumNames[T ~string, E protoreflect.Enum](field string, vals []E) ([]T, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	out := make([]T, len(vals))
	for i, v := range vals {
		name, err := enumName(fmt.Sprintf("%s[%d]", field, i), v)
		if err != nil {
			return nil, err
		}
		out[i] = T(name)
	}
	return out, nil
}

// nilIfEmpty keeps "no values" as nil, as the store reads it back, so the
// domain's comparisons of a request with what is stored see no change.
func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return append([]T(nil), s...)
}

// triggerToProto sets the one member of AutomationTrigger that t names.
func triggerToProto(t spec.Trigger) *gitpodv1.AutomationTrigger {
	switch t {
	case spec.TriggerManual:
		return &gitpodv1.AutomationTrigger{Trigger: &gitpodv1.AutomationTrigger_Manual{Manual: true}}
	case spec.TriggerPostMachineStart:
		return &gitpodv1.AutomationTrigger{Trigger: &gitpodv1.AutomationTrigger_PostMachineStart{PostMachineStart: true}}
	case spec.TriggerPostEnvironmentStart:
		return &gitpodv1.AutomationTrigger{Trigger: &gitpodv1.AutomationTrigger_PostEnvironmentStart{PostEnvironmentStart: true}}
	case spec.TriggerPostDevcontainerStart:
		return &gitpodv1.AutomationTrigger{Trigger: &gitpodv1.AutomationTrigger_PostDevcontainerStart{PostDevcontainerStart: true}}
	case spec.TriggerPrebuild:
		return &gitpodv1.AutomationTrigger{Trigger: &gitpodv1.AutomationTrigger_Prebuild{Prebuild: true}}
	case spec.TriggerBeforeSnapshot:
		return &gitpodv1.AutomationTrigger{Trigger: &gitpodv1.AutomationTrigger_BeforeSnapshot{BeforeSnapshot: true}}
	}
	return &gitpodv1.AutomationTrigger{}
}

func triggersToProto(ts []spec.Trigger) []*gitpodv1.AutomationTrigger {
	if len(ts) == 0 {
		return nil
	}
	out := make([]*gitpodv1.AutomationTrigger, len(ts))
	for i, t := range ts {
		out[i] = triggerToProto(t)
	}
	return out
}

// triggerFromProto reads the member an AutomationTrigger sets. The member's
// value is always true on the vendor's API; false, or no member at all, says
// nothing and is refused naming the field.
func triggerFromProto(field string, t *gitpodv1.AutomationTrigger) (spec.Trigger, error) {
	var (
		trig   spec.Trigger
		member string
		set    bool
	)
	switch m := t.GetTrigger().(type) {
	case *gitpodv1.AutomationTrigger_Manual:
		trig, member, set = spec.TriggerManual, "manual", m.Manual
	case *gitpodv1.AutomationTrigger_PostMachineStart:
		trig, member, set = spec.TriggerPostMachineStart, "postMachineStart", m.PostMachineStart
	case *gitpodv1.AutomationTrigger_PostEnvironmentStart:
		trig, member, set = spec.TriggerPostEnvironmentStart, "postEnvironmentStart", m.PostEnvironmentStart
	case *gitpodv1.AutomationTrigger_PostDevcontainerStart:
		trig, member, set = spec.TriggerPostDevcontainerStart, "postDevcontainerStart", m.PostDevcontainerStart
	case *gitpodv1.AutomationTrigger_Prebuild:
		trig, member, set = spec.TriggerPrebuild, "prebuild", m.Prebuild
	case *gitpodv1.AutomationTrigger_BeforeSnapshot:
		trig, member, set = spec.TriggerBeforeSnapshot, "beforeSnapshot", m.BeforeSnapshot
	default:
		return "", apperr.Invalid(field, "must set one trigger (manual, postMachineStart, postEnvironmentStart, postDevcontainerStart, prebuild or beforeSnapshot) to true")
	}
	if !set {
		return "", apperr.Invalid(field+"."+member, "must be true: a trigger is chosen by setting its member to true")
	}
	return trig, nil
}

func triggersFromProto(field string, ts []*gitpodv1.AutomationTrigger) ([]spec.Trigger, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	out := make([]spec.Trigger, len(ts))
	for i, t := range ts {
		trig, err := triggerFromProto(fmt.Sprintf("%s[%d]", field, i), t)
		if err != nil {
			return nil, err
		}
		out[i] = trig
	}
	return out, nil
}

// runsOnToProto renders where an automation runs; the zero RunsOn (the
// runner's host by default) is left out.
func runsOnToProto(r spec.RunsOn) *gitpodv1.RunsOn {
	switch {
	case r.Docker != nil:
		return &gitpodv1.RunsOn{Target: &gitpodv1.RunsOn_Docker_{Docker: &gitpodv1.RunsOn_Docker{
			Image: r.Docker.Image, Environment: nilIfEmpty(r.Docker.Environment),
		}}}
	case r.Machine != nil:
		return &gitpodv1.RunsOn{Target: &gitpodv1.RunsOn_Machine_{Machine: &gitpodv1.RunsOn_Machine{}}}
	}
	return nil
}

func runsOnFromProto(r *gitpodv1.RunsOn) spec.RunsOn {
	switch t := r.GetTarget().(type) {
	case *gitpodv1.RunsOn_Docker_:
		return spec.RunsOn{Docker: &spec.Docker{Image: t.Docker.GetImage(), Environment: nilIfEmpty(t.Docker.GetEnvironment())}}
	case *gitpodv1.RunsOn_Machine_:
		return spec.RunsOn{Machine: &spec.Machine{}}
	}
	return spec.RunsOn{}
}

func envToProto(vs []automations.EnvVar) []*gitpodv1.EnvironmentVariableItem {
	if len(vs) == 0 {
		return nil
	}
	out := make([]*gitpodv1.EnvironmentVariableItem, len(vs))
	for i, v := range vs {
		item := &gitpodv1.EnvironmentVariableItem{Name: v.Name}
		if v.SecretID != "" {
			item.Source = &gitpodv1.EnvironmentVariableItem_ValueFrom{ValueFrom: &gitpodv1.EnvironmentVariableSource{
				Source: &gitpodv1.EnvironmentVariableSource_SecretRef{SecretRef: &gitpodv1.SecretRef{Id: v.SecretID}},
			}}
		} else {
			item.Source = &gitpodv1.EnvironmentVariableItem_Value{Value: v.Value}
		}
		out[i] = item
	}
	return out
}

// envFromProto converts environment variables. A valueFrom without a secret
// reference would otherwise read as an empty value, so it is refused.
func envFromProto(field string, items []*gitpodv1.EnvironmentVariableItem) ([]automations.EnvVar, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := make([]automations.EnvVar, len(items))
	for i, it := range items {
		v := automations.EnvVar{Name: it.GetName()}
		switch s := it.GetSource().(type) {
		case *gitpodv1.EnvironmentVariableItem_Value:
			v.Value = s.Value
		case *gitpodv1.EnvironmentVariableItem_ValueFrom:
			ref := s.ValueFrom.GetSecretRef()
			if ref == nil {
				return nil, apperr.Invalid(fmt.Sprintf("%s[%d].valueFrom.secretRef", field, i), "is required")
			}
			if ref.GetId() == "" {
				return nil, apperr.Invalid(fmt.Sprintf("%s[%d].valueFrom.secretRef.id", field, i), "is required")
			}
			v.SecretID = ref.GetId()
		}
		out[i] = v
	}
	return out, nil
}

func commandsToProto(c spec.Commands) *gitpodv1.ServiceSpec_Commands {
	return &gitpodv1.ServiceSpec_Commands{Start: c.Start, Ready: c.Ready, Stop: c.Stop}
}

func commandsFromProto(c *gitpodv1.ServiceSpec_Commands) spec.Commands {
	return spec.Commands{Start: c.GetStart(), Ready: c.GetReady(), Stop: c.GetStop()}
}

func serviceToProto(s *automations.Service) *gitpodv1.Service {
	return &gitpodv1.Service{
		Id:            s.ID,
		EnvironmentId: s.EnvironmentID,
		Metadata: &gitpodv1.ServiceMetadata{
			Reference:   s.Reference,
			Name:        s.Name,
			Description: s.Description,
			CreatedAt:   timestamppb.New(s.CreatedAt),
			Creator:     subjectToProto(s.Creator),
			TriggeredBy: triggersToProto(s.TriggeredBy),
			Role:        enumOf[gitpodv1.ServiceRole](gitpodv1.ServiceRole_value, s.Role),
		},
		Spec: &gitpodv1.ServiceSpec{
			SpecVersion:  s.Spec.SpecVersion,
			DesiredPhase: enumOf[gitpodv1.ServicePhase](gitpodv1.ServicePhase_value, s.Spec.DesiredPhase),
			Commands:     commandsToProto(s.Spec.Commands),
			Session:      s.Spec.Session,
			RunsOn:       runsOnToProto(s.Spec.RunsOn),
			Env:          envToProto(s.Spec.Env),
		},
		Status: &gitpodv1.ServiceStatus{
			StatusVersion:  s.Status.StatusVersion,
			Phase:          enumOf[gitpodv1.ServicePhase](gitpodv1.ServicePhase_value, s.Status.Phase),
			FailureMessage: s.Status.FailureMessage,
			LogUrl:         s.Status.LogURL,
			Session:        s.Status.Session,
			Output:         s.Status.Output,
		},
	}
}

// serviceInput converts a CreateServiceRequest. The metadata's createdAt and
// creator and the spec's specVersion are the service's own and ignored.
func serviceInput(req *gitpodv1.CreateServiceRequest) (automations.ServiceInput, error) {
	md, sp := req.GetMetadata(), req.GetSpec()
	in := automations.ServiceInput{
		EnvironmentID: req.GetEnvironmentId(),
		Reference:     md.GetReference(),
		Name:          md.GetName(),
		Description:   md.GetDescription(),
	}
	role, err := enumName("metadata.role", md.GetRole())
	if err != nil {
		return in, err
	}
	in.Role = automations.ServiceRole(role)
	if in.TriggeredBy, err = triggersFromProto("metadata.triggeredBy", md.GetTriggeredBy()); err != nil {
		return in, err
	}
	phase, err := enumName("spec.desiredPhase", sp.GetDesiredPhase())
	if err != nil {
		return in, err
	}
	env, err := envFromProto("spec.env", sp.GetEnv())
	if err != nil {
		return in, err
	}
	in.Spec = automations.ServiceSpec{
		DesiredPhase: automations.ServicePhase(phase),
		Commands:     commandsFromProto(sp.GetCommands()),
		Session:      sp.GetSession(),
		RunsOn:       runsOnFromProto(sp.GetRunsOn()),
		Env:          env,
	}
	return in, nil
}

// serviceUpdate converts an UpdateServiceRequest. A spec that sets no field
// changes nothing, so it is no spec change (which a running service would
// refuse); a status message, even an empty one, is a status update, which
// only the service's runner may send.
func serviceUpdate(req *gitpodv1.UpdateServiceRequest) (automations.ServiceUpdate, error) {
	var u automations.ServiceUpdate
	var err error
	if md := req.GetMetadata(); md != nil {
		u.Name, u.Description = md.Name, md.Description
		if md.TriggeredBy != nil {
			ts, err := triggersFromProto("metadata.triggeredBy.trigger", md.TriggeredBy.GetTrigger())
			if err != nil {
				return u, err
			}
			u.TriggeredBy = &ts
		}
		if u.Role, err = optEnum[automations.ServiceRole]("metadata.role", md.Role); err != nil {
			return u, err
		}
	}
	if sp := req.GetSpec(); sp != nil {
		su := &automations.ServiceSpecUpdate{}
		if c := sp.GetCommands(); c != nil {
			su.Start, su.Ready, su.Stop = c.Start, c.Ready, c.Stop
		}
		if sp.RunsOn != nil {
			r := runsOnFromProto(sp.RunsOn)
			su.RunsOn = &r
		}
		if su.Env, err = envFromProto("spec.env", sp.GetEnv()); err != nil {
			return u, err
		}
		if su.Start != nil || su.Ready != nil || su.Stop != nil || su.RunsOn != nil || len(su.Env) > 0 {
			u.Spec = su
		}
	}
	if st := req.GetStatus(); st != nil {
		phase, err := optEnum[automations.ServicePhase]("status.phase", st.Phase)
		if err != nil {
			return u, err
		}
		u.Status = &automations.StatusUpdate{
			Phase: phase, FailureMessage: st.FailureMessage, LogURL: st.LogUrl, Session: st.Session,
			Output: st.GetOutput(),
		}
	}
	return u, nil
}

func serviceListFilter(f *gitpodv1.ListServicesRequest_Filter) (automations.ServiceListFilter, error) {
	out := automations.ServiceListFilter{
		EnvironmentIDs: f.GetEnvironmentIds(), References: f.GetReferences(), ServiceIDs: f.GetServiceIds(),
	}
	var err error
	out.Roles, err = enumNames[automations.ServiceRole]("filter.roles", f.GetRoles())
	return out, err
}

func taskSpecToProto(s automations.TaskSpec) *gitpodv1.TaskSpec {
	return &gitpodv1.TaskSpec{Command: s.Command, RunsOn: runsOnToProto(s.RunsOn), Env: envToProto(s.Env)}
}

func taskToProto(t *automations.Task) *gitpodv1.Task {
	return &gitpodv1.Task{
		Id:            t.ID,
		EnvironmentId: t.EnvironmentID,
		Metadata: &gitpodv1.TaskMetadata{
			Reference:   t.Reference,
			Name:        t.Name,
			Description: t.Description,
			CreatedAt:   timestamppb.New(t.CreatedAt),
			Creator:     subjectToProto(t.Creator),
			TriggeredBy: triggersToProto(t.TriggeredBy),
		},
		Spec:      taskSpecToProto(t.Spec),
		DependsOn: nilIfEmpty(t.DependsOn),
	}
}

// taskInput converts a CreateTaskRequest; createdAt and creator are the
// task's own and ignored.
func taskInput(req *gitpodv1.CreateTaskRequest) (automations.TaskInput, error) {
	md, sp := req.GetMetadata(), req.GetSpec()
	in := automations.TaskInput{
		EnvironmentID: req.GetEnvironmentId(),
		Reference:     md.GetReference(),
		Name:          md.GetName(),
		Description:   md.GetDescription(),
		DependsOn:     nilIfEmpty(req.GetDependsOn()),
	}
	var err error
	if in.TriggeredBy, err = triggersFromProto("metadata.triggeredBy", md.GetTriggeredBy()); err != nil {
		return in, err
	}
	env, err := envFromProto("spec.env", sp.GetEnv())
	if err != nil {
		return in, err
	}
	in.Spec = automations.TaskSpec{Command: sp.GetCommand(), RunsOn: runsOnFromProto(sp.GetRunsOn()), Env: env}
	return in, nil
}

func taskUpdate(req *gitpodv1.UpdateTaskRequest) (automations.TaskUpdate, error) {
	u := automations.TaskUpdate{DependsOn: nilIfEmpty(req.GetDependsOn())}
	if md := req.GetMetadata(); md != nil {
		u.Name, u.Description = md.Name, md.Description
		if md.TriggeredBy != nil {
			ts, err := triggersFromProto("metadata.triggeredBy.trigger", md.TriggeredBy.GetTrigger())
			if err != nil {
				return u, err
			}
			u.TriggeredBy = &ts
		}
	}
	if sp := req.GetSpec(); sp != nil {
		u.Command = sp.Command
		if sp.RunsOn != nil {
			r := runsOnFromProto(sp.RunsOn)
			u.RunsOn = &r
		}
		var err error
		if u.Env, err = envFromProto("spec.env", sp.GetEnv()); err != nil {
			return u, err
		}
	}
	return u, nil
}

func taskListFilter(f *gitpodv1.ListTasksRequest_Filter) automations.TaskListFilter {
	return automations.TaskListFilter{
		EnvironmentIDs: f.GetEnvironmentIds(), References: f.GetReferences(), TaskIDs: f.GetTaskIds(),
	}
}

func executionPhase(p automations.ExecutionPhase) gitpodv1.TaskExecutionPhase {
	return enumOf[gitpodv1.TaskExecutionPhase](gitpodv1.TaskExecutionPhase_value, p)
}

func executionToProto(x *automations.TaskExecution) *gitpodv1.TaskExecution {
	md := &gitpodv1.TaskExecutionMetadata{
		TaskId:        x.TaskID,
		EnvironmentId: x.EnvironmentID,
		CreatedAt:     timestamppb.New(x.CreatedAt),
		Creator:       subjectToProto(x.Creator),
		StartedBy:     x.StartedBy,
	}
	if x.StartedAt != nil {
		md.StartedAt = timestamppb.New(*x.StartedAt)
	}
	if x.CompletedAt != nil {
		md.CompletedAt = timestamppb.New(*x.CompletedAt)
	}
	sp := &gitpodv1.TaskExecutionSpec{DesiredPhase: executionPhase(x.Spec.DesiredPhase)}
	for _, g := range x.Spec.Plan {
		pg := &gitpodv1.TaskExecutionSpec_Group{}
		for _, st := range g.Steps {
			step := &gitpodv1.TaskExecutionSpec_Step{Id: st.ID, DependsOn: nilIfEmpty(st.DependsOn), Label: st.Label}
			switch {
			case st.Task != nil:
				step.Step = &gitpodv1.TaskExecutionSpec_Step_Task{Task: &gitpodv1.TaskExecutionSpec_Task{
					Id: st.Task.ID, Spec: taskSpecToProto(st.Task.Spec),
				}}
			case st.ServiceID != "":
				step.Step = &gitpodv1.TaskExecutionSpec_Step_ServiceId{ServiceId: st.ServiceID}
			}
			pg.Steps = append(pg.Steps, step)
		}
		sp.Plan = append(sp.Plan, pg)
	}
	status := &gitpodv1.TaskExecutionStatus{
		StatusVersion:  x.Status.StatusVersion,
		Phase:          executionPhase(x.Status.Phase),
		FailureMessage: x.Status.FailureMessage,
		LogUrl:         x.Status.LogURL,
	}
	for _, st := range x.Status.Steps {
		status.Steps = append(status.Steps, &gitpodv1.TaskExecutionStatus_Step{
			Id: st.ID, Phase: executionPhase(st.Phase), FailureMessage: st.FailureMessage, Output: st.Output,
		})
	}
	return &gitpodv1.TaskExecution{Id: x.ID, Metadata: md, Spec: sp, Status: status}
}

func executionListFilter(f *gitpodv1.ListTaskExecutionsRequest_Filter) (automations.ExecutionListFilter, error) {
	out := automations.ExecutionListFilter{
		EnvironmentIDs: f.GetEnvironmentIds(), TaskIDs: f.GetTaskIds(), TaskReferences: f.GetTaskReferences(),
	}
	var err error
	out.Phases, err = enumNames[automations.ExecutionPhase]("filter.phases", f.GetPhases())
	return out, err
}

// fileFromProto converts the automations file of UpsertAutomationsFile. Its
// roles and triggers are strings as the YAML file spells them; the domain
// refuses unknown ones naming the path (automationsFile.services.REF.role).
// No file is nil, which the domain reads as an empty file.
func fileFromProto(f *gitpodv1.AutomationsFile) *spec.File {
	if f == nil {
		return nil
	}
	out := &spec.File{}
	if len(f.GetServices()) > 0 {
		out.Services = make(map[string]spec.Service, len(f.GetServices()))
	}
	for ref, s := range f.GetServices() {
		out.Services[ref] = spec.Service{
			Name:        s.GetName(),
			Description: s.GetDescription(),
			Role:        spec.Role(s.GetRole()),
			Commands:    commandsFromProto(s.GetCommands()),
			RunsOn:      runsOnFromProto(s.GetRunsOn()),
			TriggeredBy: fileTriggers(s.GetTriggeredBy()),
		}
	}
	if len(f.GetTasks()) > 0 {
		out.Tasks = make(map[string]spec.Task, len(f.GetTasks()))
	}
	for ref, t := range f.GetTasks() {
		out.Tasks[ref] = spec.Task{
			Name:        t.GetName(),
			Description: t.GetDescription(),
			Command:     t.GetCommand(),
			DependsOn:   nilIfEmpty(t.GetDependsOn()),
			RunsOn:      runsOnFromProto(t.GetRunsOn()),
			TriggeredBy: fileTriggers(t.GetTriggeredBy()),
		}
	}
	return out
}

func fileTriggers(names []string) []spec.Trigger {
	if len(names) == 0 {
		return nil
	}
	out := make([]spec.Trigger, len(names))
	for i, n := range names {
		out[i] = spec.Trigger(n)
	}
	return out
}
