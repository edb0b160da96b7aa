package automations

import (
	"context"
	"errors"
	"strings"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations/spec"
	"github.com/runyard/runyard/internal/identity"
)

// File returns the automations file that environment envID's file-managed
// services and tasks amount to: what the last applied file (the
// repository's or UpsertFile's) made of them. API-created items are not in
// it, as no file changes them. It needs ScopeEnvironmentsRead and fails
// with CodeInvalid and CodeNotFound.
func (s *Manager) File(ctx context.Context, envID string) (*spec.File, error) {
	c, err := requireRead(ctx)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("environmentId", envID); err != nil {
		return nil, err
	}
	if _, err := s.Store.FindEnvironmentByID(ctx, c.OrgID, envID); err != nil {
		return nil, envNotFound(envID, err)
	}
	svcs, err := s.Store.FindServices(ctx, ServiceFilter{OrgID: c.OrgID, EnvironmentIDs: []string{envID}})
	if err != nil {
		return nil, envNotFound(envID, err)
	}
	tasks, err := s.Store.FindTasks(ctx, TaskFilter{OrgID: c.OrgID, EnvironmentIDs: []string{envID}})
	if err != nil {
		return nil, envNotFound(envID, err)
	}
	// A task's dependencies are IDs; the file names references.
	refs := map[string]string{}
	for _, x := range svcs {
		refs[x.ID] = x.Reference
	}
	for _, t := range tasks {
		refs[t.ID] = t.Reference
	}
	f := &spec.File{}
	for _, x := range svcs {
		if !x.Source.FileManaged() || x.Deleting() {
			continue
		}
		if f.Services == nil {
			f.Services = map[string]spec.Service{}
		}
		f.Services[x.Reference] = spec.Service{
			Name: fileName(x.Name, x.Reference), Description: x.Description, Role: fileRole(x.Role),
			Commands: x.Spec.Commands, RunsOn: x.Spec.RunsOn, TriggeredBy: cloneOrNil(x.TriggeredBy),
		}
	}
	for _, t := range tasks {
		if !t.Source.FileManaged() {
			continue
		}
		if f.Tasks == nil {
			f.Tasks = map[string]spec.Task{}
		}
		ft := spec.Task{
			Name: fileName(t.Name, t.Reference), Description: t.Description, Command: t.Spec.Command,
			RunsOn: t.Spec.RunsOn, TriggeredBy: cloneOrNil(t.TriggeredBy),
		}
		for _, id := range t.DependsOn {
			if ref, ok := refs[id]; ok {
				ft.DependsOn = append(ft.DependsOn, ref)
			}
		}
		f.Tasks[t.Reference] = ft
	}
	return f, nil
}

// fileName leaves out a name that is the reference, which SetDefaults
// fills in anyway: the file reads as one a person wrote.
func fileName(name, ref string) string {
	if name == ref {
		return ""
	}
	return name
}

// fileRole is RoleOf's inverse; a role no file can set reads as none.
func fileRole(r ServiceRole) spec.Role {
	switch r {
	case RoleDefault:
		return spec.RoleDefault
	case RoleEditor:
		return spec.RoleEditor
	case RoleAIAgent:
		return spec.RoleAIAgent
	}
	return spec.RoleUnspecified
}

// CheckFile parses and validates an automations file as UpsertFile's
// callers and UpsertFile do, without applying it: an invalid file is a
// CodeInvalid error whose field is under automationsFile and whose place
// FileLine finds.
func CheckFile(data []byte) (*spec.File, error) {
	f, err := spec.Parse(data)
	if err != nil {
		return nil, underFile(err)
	}
	if err := validateFile(f); err != nil {
		return nil, err
	}
	return f, nil
}

// underFile names a parse error's field under automationsFile, as
// validateFile does a validation error's.
func underFile(err error) error {
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Code != apperr.CodeInvalid {
		return err
	}
	cp := *ae
	cp.Field = "automationsFile"
	if ae.Field != "" {
		cp.Field += "." + ae.Field
	}
	return &cp
}

// FileLine returns the line of the file data that err, an error of
// CheckFile or UpsertFile on data, is about (0 when it names no place).
func FileLine(data []byte, err error) int {
	var ae *apperr.Error
	if !errors.As(err, &ae) {
		return 0
	}
	if ae.Field != "automationsFile" && !strings.HasPrefix(ae.Field, "automationsFile.") {
		return 0
	}
	cp := *ae
	cp.Field = strings.TrimPrefix(strings.TrimPrefix(ae.Field, "automationsFile"), ".")
	return spec.Line(data, &cp)
}
