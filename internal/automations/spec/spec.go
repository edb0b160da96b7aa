// Package spec is the automations file (`automations.yaml`, and the
// automationsFile of UpsertAutomationsFile in seed 003): its types, a strict
// parser, its validation rules, and the dependency planner that orders tasks
// into groups. It knows nothing of storage or of the wire format, so the
// automations service, the CLI and the runner share one definition of what a
// valid file is and in which order its automations run.
//
// Decisions where the seed is silent:
//
//   - A reference is 1 to 128 ASCII letters, digits, '-', '_' or '.', and not
//     only dots ("." and ".." would read as paths wherever a reference ends up
//     in one). Services and tasks share one namespace, because a task's
//     dependsOn may name either and must never be ambiguous.
//   - name is optional, as the seed marks it; SetDefaults fills an empty name
//     with the reference, which is what a user sees in lists.
//   - A task's dependsOn names tasks or services of the same file. Services
//     have no dependencies, so they are leaves of the graph: a task that
//     depends on a service runs once that service is running.
//   - triggeredBy in a file takes the four values the seed's AutomationsFile
//     lists. beforeSnapshot and postMachineStart exist only in the API's
//     AutomationTrigger, so they are Trigger values but not valid in a file.
//   - runsOn sets docker or machine, not both; neither means machine.
//     docker.image is required and docker.environment entries are NAME=value.
//   - Duplicates in dependsOn or triggeredBy are rejected rather than
//     silently merged, since they are almost always a copy-paste slip.
package spec

// File is an automations file: services and tasks keyed by reference.
type File struct {
	Services map[string]Service `json:"services,omitempty"`
	Tasks    map[string]Task    `json:"tasks,omitempty"`
}

// Service is a long-running process with an optional readiness check.
type Service struct {
	Name        string    `json:"name,omitempty"`
	Description string    `json:"description,omitempty"`
	Role        Role      `json:"role,omitempty"`
	Commands    Commands  `json:"commands,omitzero"`
	RunsOn      RunsOn    `json:"runsOn,omitzero"`
	TriggeredBy []Trigger `json:"triggeredBy,omitempty"`
}

// Commands are a service's shell commands. Start is required; Ready, when
// set, is polled until it exits 0 before the service counts as running; Stop,
// when set, replaces SIGTERM as the way to ask the service to end.
type Commands struct {
	Start string `json:"start,omitempty"`
	Ready string `json:"ready,omitempty"`
	Stop  string `json:"stop,omitempty"`
}

// Task is a command that runs to completion, after the tasks and services
// it depends on.
type Task struct {
	Name        string    `json:"name,omitempty"`
	Description string    `json:"description,omitempty"`
	Command     string    `json:"command,omitempty"`
	DependsOn   []string  `json:"dependsOn,omitempty"`
	RunsOn      RunsOn    `json:"runsOn,omitzero"`
	TriggeredBy []Trigger `json:"triggeredBy,omitempty"`
}

// RunsOn says where an automation runs. The zero value means the runner's
// host, the same as Machine.
type RunsOn struct {
	Docker  *Docker  `json:"docker,omitempty"`
	Machine *Machine `json:"machine,omitempty"`
}

// IsZero reports whether neither docker nor machine is set.
func (r RunsOn) IsZero() bool { return r.Docker == nil && r.Machine == nil }

// Docker runs the automation in a container of Image.
type Docker struct {
	Image string `json:"image,omitempty"`
	// Environment holds NAME=value entries for the container.
	Environment []string `json:"environment,omitempty"`
}

// Machine runs the automation on the runner's host. The seed gives it no
// fields; it exists so that a file can say so explicitly (`machine: {}`).
type Machine struct{}

// Role is the purpose of a service, as the file spells it.
type Role string

const (
	RoleUnspecified Role = ""
	RoleDefault     Role = "default"
	RoleEditor      Role = "editor"
	RoleAIAgent     Role = "ai-agent"
)

// Roles lists every role a file may set, in the seed's order.
var Roles = []Role{RoleUnspecified, RoleDefault, RoleEditor, RoleAIAgent}

// Trigger is an event that starts a service or task.
type Trigger string

const (
	TriggerManual                Trigger = "manual"
	TriggerPostEnvironmentStart  Trigger = "postEnvironmentStart"
	TriggerPostDevcontainerStart Trigger = "postDevcontainerStart"
	TriggerPrebuild              Trigger = "prebuild"
	TriggerBeforeSnapshot        Trigger = "beforeSnapshot"
	TriggerPostMachineStart      Trigger = "postMachineStart"
)

// FileTriggers lists the triggers an automations file may use, in the
// seed's order.
var FileTriggers = []Trigger{
	TriggerManual, TriggerPostEnvironmentStart, TriggerPostDevcontainerStart, TriggerPrebuild,
}

// Triggers lists every trigger of the API's AutomationTrigger.
var Triggers = []Trigger{
	TriggerManual, TriggerPostEnvironmentStart, TriggerPostDevcontainerStart, TriggerPrebuild,
	TriggerBeforeSnapshot, TriggerPostMachineStart,
}

// Valid reports whether t is one of the API's triggers.
func (t Trigger) Valid() bool { return oneOf(t, Triggers) }

// InFile reports whether an automations file may use t.
func (t Trigger) InFile() bool { return oneOf(t, FileTriggers) }

// SetDefaults fills every empty name with its reference. Validate does not
// require names, so callers that show or store a name call this first.
func (f *File) SetDefaults() {
	if f == nil {
		return
	}
	for ref, s := range f.Services {
		if s.Name == "" {
			s.Name = ref
			f.Services[ref] = s
		}
	}
	for ref, t := range f.Tasks {
		if t.Name == "" {
			t.Name = ref
			f.Tasks[ref] = t
		}
	}
}

// Graph returns the file's dependency graph keyed by reference: every task
// with its dependsOn, every service with none. Plan and PlanAll take it.
func (f *File) Graph() Graph {
	g := Graph{}
	if f == nil {
		return g
	}
	for ref := range f.Services {
		g[ref] = nil
	}
	for ref, t := range f.Tasks {
		g[ref] = t.DependsOn
	}
	return g
}

// TriggeredBy returns the sorted references of the services and tasks that
// trigger starts, the roots PlanAll orders when that event happens.
func (f *File) TriggeredBy(trigger Trigger) []string {
	if f == nil {
		return nil
	}
	var refs []string
	for ref, s := range f.Services {
		if oneOf(trigger, s.TriggeredBy) {
			refs = append(refs, ref)
		}
	}
	for ref, t := range f.Tasks {
		if oneOf(trigger, t.TriggeredBy) {
			refs = append(refs, ref)
		}
	}
	return sortedUnique(refs)
}
