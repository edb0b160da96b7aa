package protocheck

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/runyard/runyard/gen/gitpod/v1"
)

// sdkInterfaces reads the TypeScript declarations in testdata/sdk and
// returns the property names of every interface, keyed by its dotted path
// (namespace EnvironmentSpec { interface Port } is "EnvironmentSpec.Port").
// It knows just enough TypeScript for the SDK's generated declarations: one
// declaration per line, doc comments in /** */.
func sdkInterfaces(t *testing.T) map[string][]string {
	t.Helper()
	files, err := filepath.Glob("testdata/sdk/*.d.ts")
	if err != nil || len(files) == 0 {
		t.Fatalf("no SDK declarations in testdata/sdk: %v", err)
	}
	comment := regexp.MustCompile(`(?s)/\*.*?\*/`)
	decl := regexp.MustCompile(`^(?:export )?(?:declare )?(namespace|interface) (\w+)(?: extends [\w.,<> ]+)? \{$`)
	prop := regexp.MustCompile(`^(\w+)\??:`)
	out := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		type frame struct{ kind, name string }
		var stack []frame
		path := func() string {
			var names []string
			for _, fr := range stack {
				if fr.kind != "" {
					names = append(names, fr.name)
				}
			}
			return strings.Join(names, ".")
		}
		for _, line := range strings.Split(comment.ReplaceAllString(string(b), ""), "\n") {
			l := strings.TrimSpace(line)
			if m := decl.FindStringSubmatch(l); m != nil {
				stack = append(stack, frame{m[1], m[2]})
				if m[1] == "interface" {
					out[path()] = []string{}
				}
				continue
			}
			if n := len(stack); n > 0 && stack[n-1].kind == "interface" {
				if m := prop.FindStringSubmatch(l); m != nil {
					out[path()] = append(out[path()], m[1])
				}
			}
			opens, closes := strings.Count(l, "{"), strings.Count(l, "}")
			for ; opens > closes; opens-- {
				stack = append(stack, frame{}) // an inline object type
			}
			for ; closes > opens && len(stack) > 0; closes-- {
				stack = stack[:len(stack)-1]
			}
		}
	}
	return out
}

// sdkMessages pairs the SDK's request and resource types of the methods
// runyard serves with their gitpod.v1 messages.
var sdkMessages = map[string]string{
	// EnvironmentService
	"Environment":                               "Environment",
	"EnvironmentActivitySignal":                 "EnvironmentActivitySignal",
	"EnvironmentMetadata":                       "EnvironmentMetadata",
	"EnvironmentSpec":                           "EnvironmentSpec",
	"EnvironmentSpec.AutomationsFile":           "EnvironmentSpec.AutomationsFile",
	"EnvironmentSpec.Content":                   "EnvironmentSpec.Content",
	"EnvironmentSpec.Devcontainer":              "EnvironmentSpec.Devcontainer",
	"EnvironmentSpec.Devcontainer.Dotfiles":     "EnvironmentSpec.Dotfiles",
	"EnvironmentSpec.Machine":                   "EnvironmentSpec.Machine",
	"EnvironmentSpec.Port":                      "EnvironmentSpec.Port",
	"EnvironmentSpec.Secret":                    "EnvironmentSpec.Secret",
	"EnvironmentSpec.SSHPublicKey":              "EnvironmentSpec.SSHPublicKey",
	"EnvironmentSpec.Timeout":                   "EnvironmentSpec.Timeout",
	"EnvironmentStatus":                         "EnvironmentStatus",
	"EnvironmentStatus.AutomationsFile":         "EnvironmentStatus.AutomationsFile",
	"EnvironmentStatus.Content":                 "EnvironmentStatus.Content",
	"EnvironmentStatus.Content.Git":             "EnvironmentStatus.Content.Git",
	"EnvironmentStatus.Content.Git.ChangedFile": "EnvironmentStatus.Content.Git.ChangedFile",
	"EnvironmentStatus.Devcontainer":            "EnvironmentStatus.Devcontainer",
	"EnvironmentStatus.EnvironmentURLs":         "EnvironmentStatus.EnvironmentURLs",
	"EnvironmentStatus.EnvironmentURLs.Port":    "EnvironmentStatus.EnvironmentURLs.Port",
	"EnvironmentStatus.EnvironmentURLs.SSH":     "EnvironmentStatus.EnvironmentURLs.SSH",
	"EnvironmentStatus.Machine":                 "EnvironmentStatus.Machine",
	"EnvironmentStatus.Machine.Versions":        "EnvironmentStatus.Machine.Versions",
	"EnvironmentStatus.RunnerAck":               "EnvironmentStatus.RunnerACK",
	"EnvironmentStatus.Secret":                  "EnvironmentStatus.Secret",
	"EnvironmentStatus.SSHPublicKey":            "EnvironmentStatus.SSHPublicKey",
	"EnvironmentCreateParams":                   "CreateEnvironmentRequest",
	"EnvironmentRetrieveParams":                 "GetEnvironmentRequest",
	"EnvironmentListParams":                     "ListEnvironmentsRequest",
	"EnvironmentListParams.Filter":              "ListEnvironmentsRequest.Filter",
	"EnvironmentListParams.Pagination":          "PaginationRequest",
	"EnvironmentDeleteParams":                   "DeleteEnvironmentRequest",
	"EnvironmentMarkActiveParams":               "MarkEnvironmentActiveRequest",
	"EnvironmentStartParams":                    "StartEnvironmentRequest",
	"EnvironmentStopParams":                     "StopEnvironmentRequest",
	"ClassListParams":                           "ListEnvironmentClassesRequest",
	"ClassListParams.Filter":                    "ListEnvironmentClassesRequest.Filter",
	"EnvironmentClass":                          "EnvironmentClass",
	"EnvironmentInitializer":                    "EnvironmentInitializer",
	"EnvironmentInitializer.Spec":               "EnvironmentInitializer.Spec",
	"EnvironmentInitializer.Spec.ContextURL":    "ContextURLInitializer",
	"EnvironmentInitializer.Spec.Git":           "GitInitializer",
	// RunnerService
	"Runner":                                "Runner",
	"RunnerSpec":                            "RunnerSpec",
	"RunnerConfiguration":                   "RunnerConfiguration",
	"RunnerStatus":                          "RunnerStatus",
	"MetricsConfiguration":                  "MetricsConfiguration",
	"GatewayInfo":                           "GatewayInfo",
	"Gateway":                               "Gateway",
	"FieldValue":                            "FieldValue",
	"RunnerCreateParams":                    "CreateRunnerRequest",
	"RunnerRetrieveParams":                  "GetRunnerRequest",
	"RunnerUpdateParams":                    "UpdateRunnerRequest",
	"RunnerUpdateParams.Spec":               "UpdateRunnerRequest.Spec",
	"RunnerUpdateParams.Spec.Configuration": "UpdateRunnerRequest.Configuration",
	"RunnerUpdateParams.Spec.Configuration.Metrics": "UpdateRunnerRequest.Metrics",
	"RunnerListParams":                  "ListRunnersRequest",
	"RunnerListParams.Filter":           "ListRunnersRequest.Filter",
	"RunnerDeleteParams":                "DeleteRunnerRequest",
	"RunnerCreateRunnerTokenParams":     "CreateRunnerTokenRequest",
	"RunnerParseContextURLParams":       "ParseContextURLRequest",
	"RunnerParseContextURLResponse":     "ParseContextURLResponse",
	"RunnerParseContextURLResponse.Git": "ParseContextURLResponse.Git",
	// SecretService
	"Secret":                  "Secret",
	"SecretScope":             "SecretScope",
	"SecretCreateParams":      "CreateSecretRequest",
	"SecretListParams":        "ListSecretsRequest",
	"SecretListParams.Filter": "ListSecretsRequest.Filter",
	"SecretDeleteParams":      "DeleteSecretRequest",
	"SecretUpdateValueParams": "UpdateSecretValueRequest",
	// IdentityService
	"IdentityExchangeTokenParams":            "ExchangeTokenRequest",
	"IdentityGetAuthenticatedIdentityParams": "GetAuthenticatedIdentityRequest",
	"Subject":                                "Subject",
	// EnvironmentAutomationService
	"Service":                                  "Service",
	"ServiceMetadata":                          "ServiceMetadata",
	"ServiceSpec":                              "ServiceSpec",
	"ServiceSpec.Commands":                     "ServiceSpec.Commands",
	"ServiceStatus":                            "ServiceStatus",
	"ServiceCreateParams":                      "CreateServiceRequest",
	"ServiceRetrieveParams":                    "GetServiceRequest",
	"ServiceUpdateParams":                      "UpdateServiceRequest",
	"ServiceUpdateParams.Metadata":             "UpdateServiceRequest.ServiceMetadata",
	"ServiceUpdateParams.Metadata.TriggeredBy": "UpdateServiceRequest.AutomationTriggerUpdate",
	"ServiceUpdateParams.Spec":                 "UpdateServiceRequest.ServiceSpec",
	"ServiceUpdateParams.Status":               "UpdateServiceRequest.ServiceStatus",
	"ServiceListParams":                        "ListServicesRequest",
	"ServiceListParams.Filter":                 "ListServicesRequest.Filter",
	"ServiceDeleteParams":                      "DeleteServiceRequest",
	"ServiceStartParams":                       "StartServiceRequest",
	"ServiceStopParams":                        "StopServiceRequest",
	"TaskCreateParams":                         "CreateTaskRequest",
	"TaskRetrieveParams":                       "GetTaskRequest",
	"TaskUpdateParams":                         "UpdateTaskRequest",
	"TaskUpdateParams.Metadata":                "UpdateTaskRequest.TaskMetadata",
	"TaskUpdateParams.Metadata.TriggeredBy":    "UpdateTaskRequest.AutomationTriggerUpdate",
	"TaskUpdateParams.Spec":                    "UpdateTaskRequest.TaskSpec",
	"TaskListParams":                           "ListTasksRequest",
	"TaskListParams.Filter":                    "ListTasksRequest.Filter",
	"TaskDeleteParams":                         "DeleteTaskRequest",
	"TaskStartParams":                          "StartTaskRequest",
	"ExecutionRetrieveParams":                  "GetTaskExecutionRequest",
	"ExecutionListParams":                      "ListTaskExecutionsRequest",
	"ExecutionListParams.Filter":               "ListTaskExecutionsRequest.Filter",
	"ExecutionStopParams":                      "StopTaskExecutionRequest",
	"AutomationUpsertParams":                   "UpsertAutomationsFileRequest",
	"AutomationsFile":                          "AutomationsFile",
	"AutomationsFile.Services":                 "AutomationsFile.Service",
	"AutomationsFile.Tasks":                    "AutomationsFile.Task",
	"AutomationTrigger":                        "AutomationTrigger",
	"RunsOn":                                   "RunsOn",
	"RunsOn.Docker":                            "RunsOn.Docker",
	"Task":                                     "Task",
	"TaskExecution":                            "TaskExecution",
	"TaskExecutionMetadata":                    "TaskExecutionMetadata",
	"TaskExecutionSpec":                        "TaskExecutionSpec",
	"TaskExecutionSpec.Plan.Step":              "TaskExecutionSpec.Step",
	"TaskExecutionSpec.Plan.Step.Task":         "TaskExecutionSpec.Task",
}

// TestSDKFields holds the protos to the vendor's SDK: every property the SDK
// declares for a request or resource of a method runyard serves is a field
// of the matching message with that JSON name, so strict decoding accepts
// whatever a client written against the SDK sends.
func TestSDKFields(t *testing.T) {
	ifaces := sdkInterfaces(t)
	checked := 0
	for ts, msg := range sdkMessages {
		props, ok := ifaces[ts]
		if !ok {
			t.Errorf("the SDK declares no interface %s", ts)
			continue
		}
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName("gitpod.v1." + msg))
		if err != nil {
			t.Errorf("%s: no message gitpod.v1.%s", ts, msg)
			continue
		}
		fields := d.(protoreflect.MessageDescriptor).Fields()
		var names []string
		for i := range fields.Len() {
			names = append(names, fields.Get(i).JSONName())
		}
		for _, p := range props {
			checked++
			if !slices.Contains(names, p) {
				t.Errorf("%s.%s (SDK) is not a field of gitpod.v1.%s (%v)", ts, p, msg, names)
			}
		}
	}
	// A parser that lost its way would check little and pass.
	if checked < 300 {
		t.Errorf("checked only %d SDK properties", checked)
	}
}
