package protocheck

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
)

// No seed documents EnvironmentService and SecretService; these bodies use
// the field names DESIGN §2.1 and the vendor's SDK examples use, so a renamed
// field fails here.
func TestEnvironmentService_VendorShapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  proto.Message
		body string
	}{
		{"CreateEnvironment", &gitpodv1.CreateEnvironmentRequest{}, `{
			"spec": {
				"desiredPhase": "ENVIRONMENT_PHASE_RUNNING",
				"machine": {"class": "d2c94c27-3b76-4a42-b88c-95a85e392c68"},
				"content": {"initializer": {"specs": [
					{"git": {"remoteUri": "https://github.com/gitpod-io/gitpod", "cloneTarget": "main",
					         "targetMode": "CLONE_TARGET_MODE_REMOTE_BRANCH", "checkoutLocation": "gitpod"}},
					{"contextUrl": {"url": "https://github.com/gitpod-io/gitpod"}}
				]}},
				"automationsFile": {"automationsFilePath": ".gitpod/automations.yaml",
				                    "triggerFilter": [{"postEnvironmentStart": true}]}
			}
		}`},
		{"GetEnvironment", &gitpodv1.GetEnvironmentResponse{}, `{"environment": {
			"id": "07e03a28-65a5-4d98-b532-8ea67b188048",
			"metadata": {"runnerId": "r", "createdAt": "2019-12-27T18:11:19.117Z", "creator": {"id": "u", "principal": "PRINCIPAL_USER"}},
			"spec": {"specVersion": "3"},
			"status": {"statusVersion": "4", "phase": "ENVIRONMENT_PHASE_STOPPED", "failureMessage": ["a", "b"],
			           "runnerAck": {"specVersion": "3", "statusCode": "STATUS_CODE_OK"},
			           "machine": {"phase": "PHASE_RUNNING"}, "content": {"phase": "CONTENT_PHASE_READY"},
			           "automationsFile": {"phase": "CONTENT_PHASE_FAILED", "automationsFilePresence": "PRESENCE_DISCOVERED"}}
		}}`},
		{"ListEnvironments", &gitpodv1.ListEnvironmentsRequest{}, `{
			"pagination": {"pageSize": 10},
			"filter": {"runnerIds": ["r"], "statusPhases": ["ENVIRONMENT_PHASE_CREATING", "ENVIRONMENT_PHASE_STARTING",
				"ENVIRONMENT_PHASE_RUNNING", "ENVIRONMENT_PHASE_UPDATING", "ENVIRONMENT_PHASE_STOPPING",
				"ENVIRONMENT_PHASE_STOPPED", "ENVIRONMENT_PHASE_DELETING", "ENVIRONMENT_PHASE_DELETED"]}
		}`},
		{"ListEnvironmentClasses", &gitpodv1.ListEnvironmentClassesRequest{}, `{"filter": {"runnerIds": ["r"], "enabled": true}}`},
		{"ListEnvironmentClasses", &gitpodv1.ListEnvironmentClassesResponse{}, `{"environmentClasses": [
			{"id": "c", "runnerId": "r", "displayName": "Default", "description": "d",
			 "configuration": [{"key": "k", "value": "v"}], "enabled": true}]}`},
		{"DeleteEnvironment", &gitpodv1.DeleteEnvironmentRequest{}, `{"environmentId": "e", "force": true}`},
		{"CreateSecret", &gitpodv1.CreateSecretRequest{}, `{"name": "NPM_TOKEN", "value": "s3cret",
			"environmentVariable": true, "scope": {"organizationId": "o"}}`},
		{"CreateSecret", &gitpodv1.CreateSecretRequest{}, `{"name": "key", "value": "s3cret",
			"filePath": "/home/me/.key", "scope": {"projectId": "p"}}`},
		{"ListSecrets", &gitpodv1.ListSecretsRequest{}, `{"filter": {"scope": {"userId": "u"}}}`},
		{"UpdateSecretValue", &gitpodv1.UpdateSecretValueRequest{}, `{"secretId": "s", "value": "new"}`},
	} {
		if err := protojson.Unmarshal([]byte(tc.body), tc.msg); err != nil {
			t.Errorf("%s %T: %v", tc.name, tc.msg, err)
		}
	}
}

// Secret values go in and never come out: no SecretService response contains
// a field that could carry one. GetSecretValue is the vendor's, declared so
// that SDK calls answer unimplemented (connectapi's
// TestSecrets_GetSecretValueUnimplemented holds it to that).
func TestSecretService_NoValueInResponses(t *testing.T) {
	sd := gitpodv1.File_gitpod_v1_secret_proto.Services().ByName("SecretService")
	if sd == nil {
		t.Fatal("no SecretService")
	}
	done := map[protoreflect.FullName]bool{}
	var visit func(md protoreflect.MessageDescriptor)
	visit = func(md protoreflect.MessageDescriptor) {
		if done[md.FullName()] {
			return
		}
		done[md.FullName()] = true
		for i := 0; i < md.Fields().Len(); i++ {
			fd := md.Fields().Get(i)
			if fd.Name() == "value" {
				t.Errorf("%s can carry a secret value", fd.FullName())
			}
			if child := valueMessage(fd); child != nil {
				visit(child)
			}
		}
	}
	for i := 0; i < sd.Methods().Len(); i++ {
		if sd.Methods().Get(i).Name() == "GetSecretValue" {
			continue
		}
		visit(sd.Methods().Get(i).Output())
	}
}
