package cli

import (
	"context"
	"errors"
	"path"
	"regexp"
	"strings"

	"connectrpc.com/connect"
)

// The API names a bad field by its path in the request
// (filter.runnerIds[0]: must be a UUID); the user typed a flag. This file is
// the one place that maps one to the other, per API method, for every
// Connect client of the CLI (fieldErrors) and the REST client (restFields).

// fieldFlags maps, per method (Connect: "Service/Method"; REST: "METHOD
// /path-pattern"), the API's field paths to the flags or arguments that set
// them. A path matches its own entry or a longer one below it
// (filter.runnerIds matches filter.runnerIds[0]).
var fieldFlags = map[string]map[string]string{
	"PrebuildService/CreatePrebuild": {
		"contextUrl": "--context-url", "environmentClassId": "--class", "spec.timeout": "--timeout",
	},
	"PrebuildService/ListPrebuilds":  {"filter.phases": "--phase", "filter.contextUrls": "--context-url"},
	"PrebuildService/GetPrebuild":    {"prebuildId": "PREBUILD"},
	"PrebuildService/CancelPrebuild": {"prebuildId": "PREBUILD"},
	"PrebuildService/DeletePrebuild": {"prebuildId": "PREBUILD"},
	"PrebuildScheduleService/CreatePrebuildSchedule": {
		"contextUrl": "--context-url", "environmentClassId": "--class", "interval": "--every",
	},
	"PrebuildScheduleService/DeletePrebuildSchedule": {"scheduleId": "SCHEDULE"},
	"RunnerService/CreateRunner": {
		"name": "--name", "provider": "--provider", "kind": "--kind", "spec.configuration.region": "--region",
		"spec.configuration.releaseChannel": "--release-channel", "spec.configuration.logLevel": "--log-level",
		"spec.desiredPhase": "--desired-phase", "runnerManagerId": "--runner-manager-id",
	},
	"RunnerService/UpdateRunner": {
		"name": "--name", "runnerId": "RUNNER", "spec.desiredPhase": "--desired-phase",
		"spec.configuration.logLevel": "--log-level", "spec.configuration.releaseChannel": "--release-channel",
		"spec.configuration.region": "--region", "spec.configuration.metrics.url": "--metrics-url",
	},
	"RunnerService/ListRunners": {
		"filter.providers": "--provider", "filter.kinds": "--kind", "filter.creatorIds": "--creator",
	},
	"RunnerService/GetRunner":    {"runnerId": "RUNNER", "id": "RUNNER"},
	"RunnerService/DeleteRunner": {"runnerId": "RUNNER", "id": "RUNNER"},
	"EnvironmentService/ListEnvironments": {
		"filter.runnerIds": "--runner", "filter.statusPhases": "--phase", "filter.creatorIds": "--creator",
		"filter.projectIds": "--project",
	},
	"EnvironmentService/ListEnvironmentClasses": {"filter.runnerIds": "--runner"},
	"EnvironmentService/CreateEnvironment": {
		"spec.machine.class": "--class", "spec.timeout.disconnected": "--inactivity-timeout",
		"spec.content.initializer.specs": "--git/--context-url", "spec.content.initializer.specs.contextUrl": "--context-url",
		"spec.content.initializer.specs.git": "--git", "spec.automationsFile.automationsFilePath": "--automations-file",
		"name": "--name", "metadata.name": "--name",
	},
	"TokenService/CreateToken": {
		"name": "--name", "scopes": "--scopes", "expiresAt": "--expires-in", "organizationId": "--org",
	},
	"TokenService/RevokeToken":               {"tokenId": "TOKEN_ID", "id": "TOKEN_ID"},
	"OrganizationService/CreateOrganization": {"name": "NAME"},
	"SecretService/CreateSecret": {
		"name": "--name", "value": "--value", "filePath": "--file-path", "scope.userId": "--user",
		"scope.serviceAccountId": "--service-account",
	},
	"SecretService/UpdateSecretValue": {"secretId": "SECRET_ID", "value": "--value"},
	"SecretService/DeleteSecret":      {"secretId": "SECRET_ID"},
	"EventService/ListAuditLogs": {
		"filter.since": "--since", "filter.kinds": "--kind", "filter.subjectIds": "--subject",
	},
	"GET /pods": {"runner_id": "--runner", "status": "--status", "limit": "--limit"},
	"POST /pods": {
		"runner_id": "--runner", "agent_type_id": "--agent", "initial_prompt": "--prompt", "workdir": "--workdir",
		"labels": "--label",
	},
}

// fieldPathRe matches "path: " at the start of an API message: a field path
// of identifiers, dots and indexes.
var fieldPathRe = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?)*): `)

var indexRe = regexp.MustCompile(`\[\d+\]`)

// mapFieldMessage rewrites msg's leading field path to the flag that set it
// in method, and leaves msg alone when the method or path is not mapped.
func mapFieldMessage(method, msg string) string {
	m := fieldPathRe.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	flags := fieldFlags[method]
	field := m[1]
	bare := indexRe.ReplaceAllString(field, "")
	best, flag := "", ""
	for api, f := range flags {
		for _, candidate := range []string{field, bare} {
			if (candidate == api || strings.HasPrefix(candidate, api+".") || strings.HasPrefix(candidate, api+"[")) && len(api) > len(best) {
				best, flag = api, f
			}
		}
	}
	if flag == "" {
		return msg
	}
	return flag + ": " + msg[len(m[0]):]
}

// fieldErrors is the Connect interceptor that rewrites invalid-argument
// messages with mapFieldMessage.
func fieldErrors() connect.Interceptor { return fieldErrorInterceptor{} }

type fieldErrorInterceptor struct{}

func (fieldErrorInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		return res, mapConnectError(req.Spec().Procedure, err)
	}
}

func (fieldErrorInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (fieldErrorInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// mapConnectError rewrites the message of an invalid-argument error of
// procedure (/pkg.Service/Method).
func mapConnectError(procedure string, err error) error {
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument {
		return err
	}
	method := path.Base(path.Dir(procedure))
	if i := strings.LastIndex(method, "."); i >= 0 {
		method = method[i+1:]
	}
	method += "/" + path.Base(procedure)
	msg := mapFieldMessage(method, ce.Message())
	if msg == ce.Message() {
		return err
	}
	out := connect.NewError(ce.Code(), errors.New(msg))
	for k, v := range ce.Meta() {
		out.Meta()[k] = v
	}
	return out
}
