package connectapi

import (
	"testing"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
)

// TestAudited: which procedures the audit log records, and which request
// field names their object (never another field, such as a secret's value).
func TestAudited(t *testing.T) {
	for _, tc := range []struct {
		method string
		want   bool
	}{
		{"gitpod.v1.RunnerService/CreateRunner", true},
		{"gitpod.v1.RunnerService/GetRunner", false},
		{"gitpod.v1.RunnerService/ListRunners", false},
		{"gitpod.v1.EventService/WatchEvents", false},
		{"gitpod.v1.EventService/ListAuditLogs", false},
		{"gitpod.v1.RunnerService/CheckRepositoryAccess", false},
		{"gitpod.v1.RunnerService/ParseContextURL", false},
		{"gitpod.v1.EnvironmentService/MarkEnvironmentActive", false},
		{"gitpod.v1.IdentityService/ExchangeToken", true},
		{"gitpod.v1.IdentityService/GetAuthenticatedIdentity", false},
		{"runyard.v1.TokenService/RevokeToken", true},
		{"gitpod.v1.SecretService/UpdateSecretValue", true},
		{"gitpod.v1.EnvironmentAutomationService/StopTaskExecution", true},
	} {
		if got := audited(tc.method); got != tc.want {
			t.Errorf("audited(%s) = %v, want %v", tc.method, got, tc.want)
		}
	}
	for _, tc := range []struct {
		method, wantType string
	}{
		{"gitpod.v1.EnvironmentAutomationService/StopTaskExecution", "RESOURCE_TYPE_TASK_EXECUTION"},
		{"gitpod.v1.EnvironmentAutomationService/StartTask", "RESOURCE_TYPE_TASK"},
		{"gitpod.v1.EnvironmentAutomationService/StopService", "RESOURCE_TYPE_SERVICE"},
		{"gitpod.v1.EnvironmentAutomationService/UpsertAutomationsFile", "RESOURCE_TYPE_ENVIRONMENT"},
		{"runyard.v1.TokenService/CreateToken", "RESOURCE_TYPE_PERSONAL_ACCESS_TOKEN"},
	} {
		if got := auditObjectType(tc.method); got != tc.wantType {
			t.Errorf("auditObjectType(%s) = %q, want %q", tc.method, got, tc.wantType)
		}
	}
	secret := &gitpodv1.UpdateSecretValueRequest{SecretId: "s-1", Value: "hunter2"}
	if got := requestObjectID(secret.ProtoReflect(), "RESOURCE_TYPE_SECRET"); got != "s-1" {
		t.Errorf("secret id: %q", got)
	}
	create := &gitpodv1.CreateSecretRequest{Name: "N", Value: "hunter2"}
	if got := requestObjectID(create.ProtoReflect(), "RESOURCE_TYPE_SECRET"); got != "" {
		t.Errorf("create secret: object %q, want none until the store names it", got)
	}
	revoke := &runyardv1.RevokeTokenRequest{TokenId: "k-1"}
	if got := requestObjectID(revoke.ProtoReflect(), "RESOURCE_TYPE_PERSONAL_ACCESS_TOKEN"); got != "k-1" {
		t.Errorf("revoke: %q", got)
	}
}
