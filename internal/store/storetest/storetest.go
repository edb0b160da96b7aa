// Package storetest is the conformance suite for store.Store: every
// implementation runs Run and must behave the same.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store"
)

// Opener returns a new, empty, migrated store for one test.
type Opener func(t *testing.T) store.Store

// Run runs the conformance suite against the stores open returns.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Organizations", testOrganizations},
		{"OrganizationsManage", testOrganizationsManage},
		{"DeleteOrganization", testDeleteOrganization},
		{"Users", testUsers},
		{"Memberships", testMemberships},
		{"UserKeys", testUserKeys},
		{"UpdateMembership", testUpdateMembership},
		{"Invites", testInvites},
		{"Tokens", testTokens},
		{"TokensPaging", testTokensPaging},
		{"TokensRevokeCheck", testTokensRevokeCheck},
		{"BootstrapTokenUnique", testBootstrapTokenUnique},
		{"ExchangeTokens", testExchangeTokens},
		{"ExchangeTokenConcurrentRedeem", testExchangeTokenConcurrentRedeem},
		{"ExchangeRevokesAndRetries", testExchangeRevokesAndRetries},
		{"RunnerEpochs", testRunnerEpochs},
		{"RunnerRoundTrip", testRunnerRoundTrip},
		{"RunnerNames", testRunnerNames},
		{"RunnerOrganizationIsolation", testRunnerOrganizationIsolation},
		{"FindRunners", testFindRunners},
		{"UpdateRunner", testUpdateRunner},
		{"UpdateRunnerConcurrent", testUpdateRunnerConcurrent},
		{"DeleteRunner", testDeleteRunner},
		{"RunnerTombstoneNames", testRunnerTombstoneNames},
		{"RunnerTombstoneExchangeTokens", testRunnerTombstoneExchangeTokens},
		{"PurgeDeletedRunners", testPurgeDeletedRunners},
		{"RunnerTombstoneNotPlaced", testRunnerTombstoneNotPlaced},
		{"RenewRunners", testRenewRunners},
		{"FindSilentRunners", testFindSilentRunners},
		{"LostRunners", testLostRunners},
		{"RunnerSessions", testRunnerSessions},
		{"Pods", testPods},
		{"PodPlacement", testPodPlacement},
		{"PodPlacementConcurrent", testPodPlacementConcurrent},
		{"PlacePendingPods", testPlacePendingPods},
		{"UpdatePod", testUpdatePod},
		{"AgentTypes", testAgentTypes},
		{"ServerKeys", testServerKeys},
		{"EnvironmentRoundTrip", testEnvironmentRoundTrip},
		{"FindEnvironments", testFindEnvironments},
		{"UpdateEnvironment", testUpdateEnvironment},
		{"DeleteEnvironment", testDeleteEnvironment},
		{"EnvironmentActivity", testEnvironmentActivity},
		{"AutomationsRoundTrip", testAutomationsRoundTrip},
		{"AutomationSources", testAutomationSources},
		{"UpdateService", testUpdateService},
		{"UpdateTaskExecution", testUpdateTaskExecution},
		{"ReportTaskExecution", testReportTaskExecution},
		{"ReportTaskExecutionConcurrent", testReportTaskExecutionConcurrent},
		{"EditAutomations", testEditAutomations},
		{"FindServices", testFindServices},
		{"FindTasks", testFindTasks},
		{"FindTaskExecutions", testFindTaskExecutions},
		{"AutomationsCascade", testAutomationsCascade},
		{"SecretRoundTrip", testSecretRoundTrip},
		{"SecretNames", testSecretNames},
		{"FindSecrets", testFindSecrets},
		{"UpdateSecret", testUpdateSecret},
		{"DeleteSecret", testDeleteSecret},
		{"Events", testEvents},
		{"ConsoleEvents", testConsoleEvents},
		{"AuditLog", testAuditLog},
		{"AuditEveryWrite", testAuditEveryWrite},
		{"LoginStates", testLoginStates},
		{"BrowserSessions", testBrowserSessions},
		{"SignInLockout", testSignInLockout},
		{"FindRunnersByPhaseAndName", testFindRunnersByPhaseAndName},
		{"DisableUserCheck", testDisableUserCheck},
		{"LastAdminConcurrent", testLastAdminConcurrent},
		{"OtherUserSessions", testOtherUserSessions},
		{"PendingInvites", testPendingInvites},
		{"EnvironmentOfAnyOrganization", testEnvironmentOfAnyOrganization},
		{"Releases", testReleases},
		{"ReleaseChunks", testReleaseChunks},
		{"ReleaseDownloadMemory", testReleaseDownloadMemory},
		{"UserSSHKeys", testUserSSHKeys},
		{"Prebuilds", testPrebuilds},
		{"PrebuildSchedules", testPrebuildSchedules},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tt.fn(t, s)
		})
	}
}

var ctx = context.Background()

// base is a fixed instant at microsecond precision, what both stores keep.
var base = time.Date(2026, 11, 24, 10, 0, 0, 123456000, time.UTC)

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantCode(t *testing.T, err error, code apperr.Code, what string) {
	t.Helper()
	if got := apperr.CodeOf(err); err == nil || got != code {
		t.Fatalf("%s: got error %v (code %s), want code %s", what, err, got, code)
	}
}

func newOrg(t *testing.T, s store.Store) *identity.Organization {
	t.Helper()
	org := &identity.Organization{ID: uuid.NewString(), Name: "org-" + uuid.NewString()[:8], CreatedAt: base, UpdatedAt: base}
	must(t, s.CreateOrganization(ctx, org), "create organization")
	return org
}

func newToken(orgID, name string) (*identity.Token, string) {
	secret := identity.NewSecret(identity.PrefixAPIKey)
	id := uuid.NewString()
	return &identity.Token{
		ID: id, OrgID: orgID, Name: name, Principal: identity.PrincipalServiceAccount,
		Scopes:  []identity.Scope{identity.ScopeRunnersRead, identity.ScopeRunnersWrite},
		Creator: identity.Subject{ID: id, Principal: identity.PrincipalServiceAccount},
		Hash:    identity.HashSecret(secret), CreatedAt: base,
	}, secret
}

func newRunner(orgID, name string) *runners.Runner {
	return &runners.Runner{
		ID: uuid.NewString(), OrgID: orgID, Name: name,
		Kind: runners.KindLocal, Provider: runners.ProviderLinuxHost,
		Spec: runners.Spec{
			DesiredPhase: runners.PhaseActive, Variant: runners.VariantUnspecified,
			Configuration: runners.Configuration{
				ReleaseChannel: runners.ReleaseChannelStable, LogLevel: runners.LogLevelInfo,
			},
		},
		Status:    runners.Status{Phase: runners.PhaseCreated},
		Creator:   identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalServiceAccount},
		CreatedAt: base, UpdatedAt: base,
	}
}

func testOrganizations(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	got, err := s.FindOrganizationByName(ctx, org.Name)
	must(t, err, "find organization")
	if !reflect.DeepEqual(got, org) {
		t.Fatalf("organization round trip: got %+v, want %+v", got, org)
	}
	dup := &identity.Organization{ID: uuid.NewString(), Name: org.Name, CreatedAt: base}
	wantCode(t, s.CreateOrganization(ctx, dup), apperr.CodeConflict, "duplicate organization name")
	_, err = s.FindOrganizationByName(ctx, "missing")
	wantCode(t, err, apperr.CodeNotFound, "missing organization")
}

func testTokens(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	tok, _ := newToken(org.ID, "ci")
	exp := base.Add(time.Hour)
	tok.ExpiresAt = &exp
	must(t, s.CreateToken(ctx, tok), "create token")
	if tok.Seq == 0 {
		t.Fatal("CreateToken did not assign Seq")
	}
	got, err := s.FindTokenByHash(ctx, tok.Hash)
	must(t, err, "find token")
	if !reflect.DeepEqual(got, tok) {
		t.Fatalf("token round trip:\n got %+v\nwant %+v", got, tok)
	}
	_, err = s.FindTokenByHash(ctx, identity.HashSecret("nope"))
	wantCode(t, err, apperr.CodeNotFound, "unknown hash")

	dup, _ := newToken(org.ID, "dup")
	dup.Hash = tok.Hash
	wantCode(t, s.CreateToken(ctx, dup), apperr.CodeConflict, "duplicate hash")

	// Revoking is idempotent and keeps the first revocation time.
	r1, err := s.RevokeToken(ctx, org.ID, tok.ID, base.Add(time.Minute), nil)
	must(t, err, "revoke")
	r2, err := s.RevokeToken(ctx, org.ID, tok.ID, base.Add(2*time.Minute), nil)
	must(t, err, "revoke again")
	if r1.RevokedAt == nil || !r1.RevokedAt.Equal(base.Add(time.Minute)) || !r2.RevokedAt.Equal(*r1.RevokedAt) {
		t.Fatalf("revoked at: first %v, second %v", r1.RevokedAt, r2.RevokedAt)
	}
	other := newOrg(t, s)
	_, err = s.RevokeToken(ctx, other.ID, tok.ID, base, nil)
	wantCode(t, err, apperr.CodeNotFound, "revoke from another organization")

	must(t, s.SetTokenHash(ctx, org.ID, tok.ID, identity.HashSecret("rotated")), "set hash")
	if _, err := s.FindTokenByHash(ctx, identity.HashSecret("rotated")); err != nil {
		t.Fatalf("find by new hash: %v", err)
	}
	wantCode(t, s.SetTokenHash(ctx, other.ID, tok.ID, "x"), apperr.CodeNotFound, "set hash in another organization")
}

func testTokensPaging(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	other := newOrg(t, s)
	var ids []string
	for i := range 5 {
		tok, _ := newToken(org.ID, fmt.Sprintf("t%d", i))
		must(t, s.CreateToken(ctx, tok), "create")
		ids = append(ids, tok.ID)
		o, _ := newToken(other.ID, "other")
		must(t, s.CreateToken(ctx, o), "create other")
	}
	_, err := s.RevokeToken(ctx, org.ID, ids[1], base, nil)
	must(t, err, "revoke")

	all, err := s.FindTokens(ctx, identity.TokenFilter{OrgID: org.ID, IncludeRevoked: true})
	must(t, err, "find all")
	if got := tokenIDs(all); !reflect.DeepEqual(got, ids) {
		t.Fatalf("all tokens: got %v, want %v", got, ids)
	}
	active, err := s.FindTokens(ctx, identity.TokenFilter{OrgID: org.ID})
	must(t, err, "find active")
	if got, want := tokenIDs(active), []string{ids[0], ids[2], ids[3], ids[4]}; !reflect.DeepEqual(got, want) {
		t.Fatalf("active tokens: got %v, want %v", got, want)
	}
	page, err := s.FindTokens(ctx, identity.TokenFilter{OrgID: org.ID, IncludeRevoked: true, After: all[1].Seq, Limit: 2})
	must(t, err, "find page")
	if got, want := tokenIDs(page), ids[2:4]; !reflect.DeepEqual(got, want) {
		t.Fatalf("page: got %v, want %v", got, want)
	}
	// By ID: the one token, revoked too when asked; none of another
	// organization.
	for _, tt := range []struct {
		name string
		f    identity.TokenFilter
		want []string
	}{
		{"one", identity.TokenFilter{OrgID: org.ID, ID: ids[3]}, ids[3:4]},
		{"revoked", identity.TokenFilter{OrgID: org.ID, ID: ids[1], IncludeRevoked: true}, ids[1:2]},
		{"revoked hidden", identity.TokenFilter{OrgID: org.ID, ID: ids[1]}, nil},
		{"other organization", identity.TokenFilter{OrgID: other.ID, ID: ids[3], IncludeRevoked: true}, nil},
	} {
		got, err := s.FindTokens(ctx, tt.f)
		must(t, err, "find by ID "+tt.name)
		if gotIDs := tokenIDs(got); !reflect.DeepEqual(gotIDs, tt.want) {
			t.Errorf("by ID, %s: got %v, want %v", tt.name, gotIDs, tt.want)
		}
	}
}

func tokenIDs(ts []*identity.Token) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func testBootstrapTokenUnique(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	_, err := s.FindBootstrapToken(ctx, org.ID)
	wantCode(t, err, apperr.CodeNotFound, "no bootstrap token yet")
	a, _ := newToken(org.ID, "admin")
	a.Bootstrap = true
	must(t, s.CreateToken(ctx, a), "create bootstrap token")
	b, _ := newToken(org.ID, "admin2")
	b.Bootstrap = true
	wantCode(t, s.CreateToken(ctx, b), apperr.CodeConflict, "second bootstrap token")
	got, err := s.FindBootstrapToken(ctx, org.ID)
	must(t, err, "find bootstrap token")
	if got.ID != a.ID || !got.Bootstrap {
		t.Fatalf("bootstrap token: got %+v", got)
	}
	// Other organizations have their own.
	other := newOrg(t, s)
	c, _ := newToken(other.ID, "admin")
	c.Bootstrap = true
	must(t, s.CreateToken(ctx, c), "bootstrap token in another organization")
}

func testExchangeTokens(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	r := newRunner(org.ID, "runner-x")
	x, _ := identity.NewExchangeToken(org.ID, r.ID, base)
	must(t, s.CreateRunner(ctx, r, x), "create runner")

	issued := func(x *identity.ExchangeToken) (*identity.Token, error) {
		tok, _ := newToken(x.OrgID, "runner")
		tok.Principal, tok.RunnerID, tok.Scopes = identity.PrincipalRunner, x.RunnerID, nil
		return tok, nil
	}
	// A refusal from the callback changes nothing.
	refused := apperr.Unauthenticated("no")
	_, err := s.RedeemExchangeToken(ctx, x.Hash, base, func(*identity.ExchangeToken) (*identity.Token, error) { return nil, refused })
	wantCode(t, err, apperr.CodeUnauthenticated, "refused redemption")

	var seen *identity.ExchangeToken
	var tok *identity.Token
	must(t, errOf(s.RedeemExchangeToken(ctx, x.Hash, base.Add(time.Second), func(got *identity.ExchangeToken) (*identity.Token, error) {
		seen = got
		var err error
		tok, err = issued(got)
		return tok, err
	})), "redeem")
	if seen.UsedAt != nil || seen.RunnerID != r.ID || seen.OrgID != org.ID || !seen.ExpiresAt.Equal(x.ExpiresAt) {
		t.Fatalf("exchange token seen by callback: %+v", seen)
	}
	got, err := s.FindTokenByHash(ctx, tok.Hash)
	must(t, err, "find issued token")
	if got.RunnerID != r.ID || got.Principal != identity.PrincipalRunner {
		t.Fatalf("issued token: %+v", got)
	}
	// The second redemption sees the token used.
	_, err = s.RedeemExchangeToken(ctx, x.Hash, base.Add(2*time.Second), func(got *identity.ExchangeToken) (*identity.Token, error) {
		if got.UsedAt == nil || !got.UsedAt.Equal(base.Add(time.Second)) {
			t.Errorf("second redemption: UsedAt = %v", got.UsedAt)
		}
		return nil, apperr.Unauthenticated("used")
	})
	wantCode(t, err, apperr.CodeUnauthenticated, "second redemption")
	_, err = s.RedeemExchangeToken(ctx, identity.HashSecret("unknown"), base, issued)
	wantCode(t, err, apperr.CodeNotFound, "unknown exchange token")

	// More exchange tokens for the same runner.
	y, _ := identity.NewExchangeToken(org.ID, r.ID, base)
	must(t, s.CreateExchangeToken(ctx, y), "create exchange token")
	must(t, errOf(s.RedeemExchangeToken(ctx, y.Hash, base, issued)), "redeem second token")
}

func testExchangeTokenConcurrentRedeem(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	r := newRunner(org.ID, "runner-c")
	x, _ := identity.NewExchangeToken(org.ID, r.ID, base)
	must(t, s.CreateRunner(ctx, r, x), "create runner")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.RedeemExchangeToken(ctx, x.Hash, base, func(got *identity.ExchangeToken) (*identity.Token, error) {
				if got.UsedAt != nil {
					return nil, apperr.Unauthenticated("used")
				}
				tok, _ := newToken(got.OrgID, "runner")
				tok.Principal, tok.RunnerID = identity.PrincipalRunner, got.RunnerID
				return tok, nil
			})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case apperr.Is(err, apperr.CodeUnauthenticated):
		default:
			t.Errorf("concurrent redemption: unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent redemptions succeeded, want exactly 1", ok, n)
	}
}

func testRunnerRoundTrip(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	r := newRunner(org.ID, "full-runner")
	r.Kind, r.Provider, r.RunnerManagerID = runners.KindRemote, runners.ProviderManaged, uuid.NewString()
	r.Spec = runners.Spec{
		DesiredPhase: runners.PhaseInactive, Variant: runners.VariantEnterprise,
		Configuration: runners.Configuration{
			Region: "us-west", ReleaseChannel: runners.ReleaseChannelLatest, AutoUpdate: true,
			LogLevel: runners.LogLevelDebug, DevcontainerImageCacheEnabled: true, ContinuousProfiling: true,
			EncryptedHoneycombAPIKey: []byte{0, 1, 2, 0xff},
			UpdateWindow:             &runners.UpdateWindow{StartHour: 0, EndHour: 2},
			Metrics: runners.Metrics{Enabled: true, URL: "https://metrics.example/push", Username: "u",
				Password: "s3cret", ManagedMetricsEnabled: true, IncludeVerboseMetrics: true},
		},
	}
	r.LastSeen = base.Add(time.Minute)
	r.Report = runners.Report{Version: "1.2.3", OS: "linux", Arch: "amd64", Hostname: "host-1", Labels: []string{"gpu"},
		MaxPods: 4, Components: []runners.Component{{Name: runners.ComponentRunner, Healthy: true, Version: "1.2.3"}}, Draining: true}
	r.Status = runners.Status{
		Version: "1.2.3", SystemDetails: "linux/amd64 host-1",
		Phase: runners.PhaseActive, Message: "ok", Region: "eu-1",
		AdditionalInfo: []runners.FieldValue{{Key: "k", Value: "v"}},
		Capabilities:   []runners.Capability{"RUNNER_CAPABILITY_AGENT_EXECUTION"},
		LogURL:         "https://logs", Gateway: &runners.GatewayInfo{Name: "gw", URL: "https://gw", Region: "eu", Latency: 1500 * time.Millisecond},
		PublicKey: make([]byte, 32), SupportBundleURL: "https://sb", LLMURL: "https://llm",
	}
	must(t, s.CreateRunner(ctx, r, nil), "create runner")
	if r.Seq == 0 {
		t.Fatal("CreateRunner did not assign Seq")
	}
	got, err := s.FindRunnerByID(ctx, org.ID, r.ID)
	must(t, err, "find runner")
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("runner round trip:\n got %+v\nwant %+v", got, r)
	}
	bySeq, err := s.FindRunnerBySeq(ctx, org.ID, r.Seq)
	must(t, err, "find runner by seq")
	byName, err := s.FindRunnerByName(ctx, org.ID, r.Name)
	must(t, err, "find runner by name")
	if !reflect.DeepEqual(bySeq, r) || !reflect.DeepEqual(byName, r) {
		t.Fatalf("lookups by seq and name differ:\n seq %+v\nname %+v", bySeq, byName)
	}
	other := newOrg(t, s)
	_, err = s.FindRunnerBySeq(ctx, other.ID, r.Seq)
	wantCode(t, err, apperr.CodeNotFound, "find by seq from another organization")
	_, err = s.FindRunnerByName(ctx, other.ID, r.Name)
	wantCode(t, err, apperr.CodeNotFound, "find by name from another organization")
}

func testRunnerNames(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	must(t, s.CreateRunner(ctx, newRunner(org.ID, "same"), nil), "create")
	wantCode(t, s.CreateRunner(ctx, newRunner(org.ID, "same"), nil), apperr.CodeConflict, "duplicate name")
	other := newOrg(t, s)
	must(t, s.CreateRunner(ctx, newRunner(other.ID, "same"), nil), "same name in another organization")
}

func testRunnerOrganizationIsolation(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	r := newRunner(org.ID, "mine")
	must(t, s.CreateRunner(ctx, r, nil), "create")
	_, err := s.FindRunnerByID(ctx, other.ID, r.ID)
	wantCode(t, err, apperr.CodeNotFound, "find from another organization")
	_, err = s.UpdateRunner(ctx, other.ID, r.ID, func(*runners.Runner) error { return nil })
	wantCode(t, err, apperr.CodeNotFound, "update from another organization")
	_, err = s.DeleteRunner(ctx, other.ID, r.ID, markDeleted(base))
	wantCode(t, err, apperr.CodeNotFound, "delete from another organization")
	_, err = s.FindRunnerOrTombstone(ctx, other.ID, r.ID)
	wantCode(t, err, apperr.CodeNotFound, "find with tombstones from another organization")
	list, err := s.FindRunners(ctx, runners.Filter{OrgID: other.ID})
	must(t, err, "list other organization")
	if len(list) != 0 {
		t.Fatalf("another organization lists %d runners", len(list))
	}
}

func testFindRunners(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	alice, bob := uuid.NewString(), uuid.NewString()
	type spec struct {
		provider runners.Provider
		creator  string
	}
	specs := []spec{
		{runners.ProviderLinuxHost, alice}, {runners.ProviderAWSEC2, bob}, {runners.ProviderGCP, alice},
		{runners.ProviderDesktopMac, bob}, {runners.ProviderLinuxHost, bob},
	}
	var all []*runners.Runner
	for i, sp := range specs {
		r := newRunner(org.ID, fmt.Sprintf("r%d", i))
		r.Provider, r.Kind, r.Creator.ID = sp.provider, runners.KindOf(sp.provider), sp.creator
		must(t, s.CreateRunner(ctx, r, nil), "create")
		all = append(all, r)
	}
	names := func(rs []*runners.Runner) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Name)
		}
		return out
	}
	tests := []struct {
		name   string
		filter runners.Filter
		want   []string
	}{
		{"All", runners.Filter{}, []string{"r0", "r1", "r2", "r3", "r4"}},
		{"Creator", runners.Filter{CreatorIDs: []string{alice}}, []string{"r0", "r2"}},
		{"Creators", runners.Filter{CreatorIDs: []string{alice, bob}}, []string{"r0", "r1", "r2", "r3", "r4"}},
		{"Kind", runners.Filter{Kinds: []runners.Kind{runners.KindRemote}}, []string{"r1", "r2"}},
		{"Providers", runners.Filter{Providers: []runners.Provider{runners.ProviderLinuxHost, runners.ProviderGCP}}, []string{"r0", "r2", "r4"}},
		{"Combined", runners.Filter{CreatorIDs: []string{bob}, Kinds: []runners.Kind{runners.KindLocal}}, []string{"r3", "r4"}},
		{"Page", runners.Filter{After: all[1].Seq, Limit: 2}, []string{"r2", "r3"}},
		{"PageFiltered", runners.Filter{After: all[0].Seq, Limit: 1, CreatorIDs: []string{alice}}, []string{"r2"}},
		{"None", runners.Filter{CreatorIDs: []string{uuid.NewString()}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.filter.OrgID = org.ID
			got, err := s.FindRunners(ctx, tt.filter)
			must(t, err, "find runners")
			if !reflect.DeepEqual(names(got), tt.want) {
				t.Fatalf("got %v, want %v", names(got), tt.want)
			}
		})
	}
}

func testUpdateRunner(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	r := newRunner(org.ID, "before")
	must(t, s.CreateRunner(ctx, r, nil), "create")
	must(t, s.CreateRunner(ctx, newRunner(org.ID, "taken"), nil), "create second")

	got, err := s.UpdateRunner(ctx, org.ID, r.ID, func(r *runners.Runner) error {
		r.Name = "after"
		r.Spec.Configuration.LogLevel = runners.LogLevelDebug
		r.Spec.Configuration.Metrics.Password = "pw"
		r.Status.Phase = runners.PhaseDeleting
		r.UpdatedAt = base.Add(time.Hour)
		return nil
	})
	must(t, err, "update")
	found, err := s.FindRunnerByID(ctx, org.ID, r.ID)
	must(t, err, "find")
	if !reflect.DeepEqual(found, got) {
		t.Fatalf("update result differs from stored runner:\n got %+v\nwant %+v", found, got)
	}
	if found.Name != "after" || found.Spec.Configuration.Metrics.Password != "pw" ||
		found.Status.Phase != runners.PhaseDeleting || !found.UpdatedAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("update not stored: %+v", found)
	}

	// An error from fn changes nothing.
	_, err = s.UpdateRunner(ctx, org.ID, r.ID, func(r *runners.Runner) error {
		r.Name = "changed"
		return apperr.Invalid("name", "refused")
	})
	wantCode(t, err, apperr.CodeInvalid, "refused update")
	wantCode(t, func() error {
		_, err := s.UpdateRunner(ctx, org.ID, r.ID, func(r *runners.Runner) error { r.Name = "taken"; return nil })
		return err
	}(), apperr.CodeConflict, "rename onto a taken name")
	found, err = s.FindRunnerByID(ctx, org.ID, r.ID)
	must(t, err, "find")
	if found.Name != "after" {
		t.Fatalf("failed updates changed the name to %q", found.Name)
	}
	_, err = s.UpdateRunner(ctx, org.ID, uuid.NewString(), func(*runners.Runner) error { return nil })
	wantCode(t, err, apperr.CodeNotFound, "update missing runner")
}

// testUpdateRunnerConcurrent checks that read-modify-write updates do not
// lose each other's changes.
func testUpdateRunnerConcurrent(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	r := newRunner(org.ID, "counter")
	must(t, s.CreateRunner(ctx, r, nil), "create")
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateRunner(ctx, org.ID, r.ID, func(r *runners.Runner) error {
				r.Status.AdditionalInfo = append(r.Status.AdditionalInfo, runners.FieldValue{Key: "k"})
				return nil
			})
			if err != nil {
				t.Errorf("concurrent update: %v", err)
			}
		}()
	}
	wg.Wait()
	got, err := s.FindRunnerByID(ctx, org.ID, r.ID)
	must(t, err, "find")
	if len(got.Status.AdditionalInfo) != n {
		t.Fatalf("after %d concurrent appends the runner has %d entries", n, len(got.Status.AdditionalInfo))
	}
}

// connected stores a runner that reported at t.
func connected(t *testing.T, s store.Store, orgID, name string, at time.Time) *runners.Runner {
	t.Helper()
	r := newRunner(orgID, name)
	r.ApplyReport(runners.Report{Version: "1.0.0", OS: "linux", Arch: "amd64"}, at)
	must(t, s.CreateRunner(ctx, r, nil), "create")
	return r
}

func testRenewRunners(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	a := connected(t, s, org.ID, "a", base)
	b := connected(t, s, org.ID, "b", base)
	never := newRunner(org.ID, "never")
	must(t, s.CreateRunner(ctx, never, nil), "create")
	_, err := s.UpdateRunner(ctx, org.ID, b.ID, func(r *runners.Runner) error {
		r.Status.Phase = runners.PhaseInactive
		return nil
	})
	must(t, err, "make b inactive")

	later := base.Add(10 * time.Second)
	inactive, err := s.RenewRunners(ctx, []runners.Renewal{
		{OrgID: org.ID, RunnerID: a.ID, At: later},
		{OrgID: org.ID, RunnerID: b.ID, At: later},
	})
	must(t, err, "renew")
	if len(inactive) != 1 || inactive[0].RunnerID != b.ID {
		t.Fatalf("inactive runners returned: %+v, want only b", inactive)
	}
	got, err := s.FindRunnerByID(ctx, org.ID, a.ID)
	must(t, err, "find a")
	if !got.LastSeen.Equal(later) || got.Status.Phase != runners.PhaseActive {
		t.Fatalf("renewed runner: last seen %v phase %s", got.LastSeen, got.Status.Phase)
	}
	// A renewal older than the last one does not move time back, and is not
	// mistaken for an inactive runner.
	inactive, err = s.RenewRunners(ctx, []runners.Renewal{{OrgID: org.ID, RunnerID: a.ID, At: base}})
	must(t, err, "stale renewal")
	got, err = s.FindRunnerByID(ctx, org.ID, a.ID)
	must(t, err, "find a")
	if len(inactive) != 0 || !got.LastSeen.Equal(later) {
		t.Fatalf("stale renewal: inactive %+v, last seen %v", inactive, got.LastSeen)
	}
	// A batch that renews a runner twice keeps the later time, whatever
	// the order.
	latest := later.Add(20 * time.Second)
	inactive, err = s.RenewRunners(ctx, []runners.Renewal{
		{OrgID: org.ID, RunnerID: a.ID, At: latest},
		{OrgID: org.ID, RunnerID: a.ID, At: later.Add(5 * time.Second)},
	})
	must(t, err, "renew twice")
	got, err = s.FindRunnerByID(ctx, org.ID, a.ID)
	must(t, err, "find a")
	if len(inactive) != 0 || !got.LastSeen.Equal(latest) {
		t.Fatalf("renewed twice in a batch: inactive %+v, last seen %v, want %v", inactive, got.LastSeen, latest)
	}
	later = latest
	// Another organization's renewal changes nothing.
	other := newOrg(t, s)
	_, err = s.RenewRunners(ctx, []runners.Renewal{{OrgID: other.ID, RunnerID: a.ID, At: later.Add(time.Hour)}})
	must(t, err, "foreign renewal")
	got, err = s.FindRunnerByID(ctx, org.ID, a.ID)
	must(t, err, "find a")
	if !got.LastSeen.Equal(later) {
		t.Fatalf("a renewal under another organization moved last seen to %v", got.LastSeen)
	}
}

func testFindSilentRunners(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	old := connected(t, s, org.ID, "old", base)
	connected(t, s, org.ID, "fresh", base.Add(time.Minute))
	must(t, s.CreateRunner(ctx, newRunner(org.ID, "never"), nil), "create never-connected")
	gone := connected(t, s, org.ID, "gone", base)
	_, err := s.UpdateRunner(ctx, org.ID, gone.ID, func(r *runners.Runner) error {
		r.Status.Phase = runners.PhaseInactive
		return nil
	})
	must(t, err, "make gone inactive")

	silent, err := s.FindSilentRunners(ctx, base.Add(30*time.Second))
	must(t, err, "find silent")
	if len(silent) != 1 || silent[0].RunnerID != old.ID || silent[0].OrgID != org.ID || !silent[0].At.Equal(base) {
		t.Fatalf("silent runners: %+v, want only %q", silent, old.ID)
	}
}

func testPods(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	var r1, r2 string
	seqs := map[string]int64{}
	for i, id := range []*string{&r1, &r2} {
		r := newRunner(org.ID, fmt.Sprintf("pods-%d", i))
		must(t, s.CreateRunner(ctx, r, nil), "create runner")
		*id, seqs[r.ID] = r.ID, r.Seq
	}
	exit := 3
	started := base.Add(time.Second)
	mk := func(orgID, runnerID string, status pods.Status, i int) *pods.Pod {
		p := &pods.Pod{Key: fmt.Sprintf("pod-%s-%d", orgID[:8], i), OrgID: orgID, RunnerID: runnerID, Status: status,
			AgentTypeID: "claude-code", InitialPrompt: "Fix the login bug", Labels: []string{"gpu"}, CreatedAt: base.Add(time.Duration(i) * time.Minute)}
		if orgID == org.ID {
			p.RunnerSeq = seqs[runnerID]
		}
		if status == pods.StatusFailed {
			p.ExitCode, p.StartedAt, p.FinishedAt, p.Reason = &exit, &started, &started, "exit 3"
		}
		must(t, s.CreatePod(ctx, p), "create pod")
		return p
	}
	a := mk(org.ID, r1, pods.StatusRunning, 1)
	mk(org.ID, r1, pods.StatusPending, 2)
	f := mk(org.ID, r1, pods.StatusFailed, 3)
	mk(org.ID, r2, pods.StatusRunning, 4)
	mk(org.ID, "", pods.StatusPending, 5)
	mk(other.ID, r1, pods.StatusRunning, 6)
	dup := *a
	wantCode(t, s.CreatePod(ctx, &dup), apperr.CodeConflict, "duplicate pod key")

	got, total, err := s.FindPods(ctx, pods.Filter{OrgID: org.ID, RunnerID: r1, Limit: 2})
	must(t, err, "find pods")
	if total != 3 || len(got) != 2 || got[0].Key != f.Key {
		t.Fatalf("first page: total %d, %d pods, first %v", total, len(got), got)
	}
	if !reflect.DeepEqual(got[0], f) {
		t.Fatalf("pod round trip:\n got %+v\nwant %+v", got[0], f)
	}
	got, total, err = s.FindPods(ctx, pods.Filter{OrgID: org.ID, RunnerID: r1, Limit: 2, Offset: 2})
	must(t, err, "find second page")
	if total != 3 || len(got) != 1 || got[0].Key != a.Key {
		t.Fatalf("second page: total %d, pods %v", total, got)
	}
	got, total, err = s.FindPods(ctx, pods.Filter{OrgID: org.ID, Status: pods.StatusRunning, Limit: 10})
	must(t, err, "find running")
	if total != 2 || len(got) != 2 {
		t.Fatalf("running pods: total %d, %d pods", total, len(got))
	}
	wantCounts := func(what string, want map[string]int) {
		t.Helper()
		counts, err := s.CountActivePods(ctx, org.ID)
		must(t, err, "count")
		if !reflect.DeepEqual(counts, want) {
			t.Fatalf("%s: active pods per runner = %v, want %v", what, counts, want)
		}
	}
	// The other organization's pod names r1 but holds no place on it.
	wantCounts("created", map[string]int{r1: 2, r2: 1})
	update := func(key string, fn func(p *pods.Pod)) {
		t.Helper()
		_, err := s.UpdatePod(ctx, org.ID, key, func(p *pods.Pod) error { fn(p); return nil })
		must(t, err, "update pod")
	}
	pending := fmt.Sprintf("pod-%s-%d", org.ID[:8], 2)
	unplaced := fmt.Sprintf("pod-%s-%d", org.ID[:8], 5)
	update(pending, func(p *pods.Pod) { p.Status = pods.StatusRunning })
	wantCounts("pending to running on the same runner", map[string]int{r1: 2, r2: 1})
	update(unplaced, func(p *pods.Pod) { p.RunnerID = r2 })
	wantCounts("a pending pod placed", map[string]int{r1: 2, r2: 2})
	update(unplaced, func(p *pods.Pod) { p.RunnerID = r1 })
	wantCounts("a pending pod moved", map[string]int{r1: 3, r2: 1})
	update(a.Key, func(p *pods.Pod) { p.Status = pods.StatusTerminated })
	update(pending, func(p *pods.Pod) { p.Status = pods.StatusFailed })
	wantCounts("two ended", map[string]int{r1: 1, r2: 1})
	update(f.Key, func(p *pods.Pod) { p.Reason = "changed, still failed" })
	update(unplaced, func(p *pods.Pod) { p.Status, p.RunnerID = pods.StatusPending, "" })
	wantCounts("a placed pending pod taken off its runner", map[string]int{r2: 1})
	// A failed update changes no count.
	_, err = s.UpdatePod(ctx, org.ID, fmt.Sprintf("pod-%s-%d", org.ID[:8], 4), func(p *pods.Pod) error {
		p.Status = pods.StatusTerminated
		return errors.New("refused")
	})
	if err == nil {
		t.Fatal("an update whose function failed succeeded")
	}
	wantCounts("a failed update", map[string]int{r2: 1})
}

// errOf drops a result that a check does not need.
func errOf[T any](_ T, err error) error { return err }

// testTokensRevokeCheck checks RevokeToken's check: it sees the
// organization's unrevoked API keys, a refusal changes nothing, concurrent
// revocations see each other (so a rule "keep one" holds under races), and
// SetTokenHash makes a revoked token active again.
func testTokensRevokeCheck(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	other := newOrg(t, s)
	var ids []string
	for i := range 3 {
		tok, _ := newToken(org.ID, fmt.Sprintf("k%d", i))
		must(t, s.CreateToken(ctx, tok), "create")
		ids = append(ids, tok.ID)
	}
	o, _ := newToken(other.ID, "other")
	must(t, s.CreateToken(ctx, o), "create other")
	_, err := s.RevokeToken(ctx, org.ID, ids[2], base, nil)
	must(t, err, "revoke k2")

	var seen []string
	refused := apperr.FailedPrecondition("refused")
	_, err = s.RevokeToken(ctx, org.ID, ids[0], base, func(tok *identity.Token, keys []*identity.Token) error {
		if tok.ID != ids[0] || tok.RevokedAt != nil {
			t.Errorf("check got token %+v, want unrevoked %s", tok, ids[0])
		}
		seen = tokenIDs(keys)
		return refused
	})
	if err != refused {
		t.Fatalf("revoke refused by check: err %v, want the check's error", err)
	}
	if want := ids[:2]; !reflect.DeepEqual(seen, want) {
		t.Fatalf("check saw keys %v, want the unrevoked keys of the organization %v", seen, want)
	}
	if got, err := s.FindTokenByHash(ctx, mustToken(t, s, org.ID, ids[0]).Hash); err != nil || got.RevokedAt != nil {
		t.Fatalf("a refused revocation revoked the token: %+v, %v", got, err)
	}
	// An already revoked token is not checked again: revoking is idempotent.
	if _, err := s.RevokeToken(ctx, org.ID, ids[2], base, func(*identity.Token, []*identity.Token) error { return refused }); err != nil {
		t.Fatalf("revoke a revoked token again: %v", err)
	}

	// "Keep at least one": two revocations at once of the last two keys;
	// exactly one may win, whatever the interleaving.
	keepOne := func(tok *identity.Token, keys []*identity.Token) error {
		if len(keys) <= 1 {
			return refused
		}
		return nil
	}
	errs := make(chan error, 2)
	for _, id := range ids[:2] {
		go func() {
			_, err := s.RevokeToken(ctx, org.ID, id, base, keepOne)
			errs <- err
		}()
	}
	var ok, no int
	for range 2 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case err == refused:
			no++
		default:
			t.Fatalf("concurrent revoke: %v", err)
		}
	}
	if ok != 1 || no != 1 {
		t.Fatalf("concurrent revocations of the last two keys: %d revoked, %d refused; want 1 and 1", ok, no)
	}
	active, err := s.FindTokens(ctx, identity.TokenFilter{OrgID: org.ID})
	must(t, err, "find active")
	if len(active) != 1 {
		t.Fatalf("%d active keys after the race, want 1", len(active))
	}

	// SetTokenHash brings a revoked, expiring token back.
	exp := base.Add(time.Hour)
	gone, _ := newToken(org.ID, "gone")
	gone.ExpiresAt = &exp
	must(t, s.CreateToken(ctx, gone), "create gone")
	_, err = s.RevokeToken(ctx, org.ID, gone.ID, base, nil)
	must(t, err, "revoke gone")
	must(t, s.SetTokenHash(ctx, org.ID, gone.ID, identity.HashSecret("restored")), "set hash")
	got, err := s.FindTokenByHash(ctx, identity.HashSecret("restored"))
	must(t, err, "find restored")
	if got.RevokedAt != nil || got.ExpiresAt != nil {
		t.Fatalf("restored token: revoked %v, expires %v; want neither", got.RevokedAt, got.ExpiresAt)
	}
}

// mustToken finds a token by ID among all of its organization's.
func mustToken(t *testing.T, s store.Store, orgID, id string) *identity.Token {
	t.Helper()
	all, err := s.FindTokens(ctx, identity.TokenFilter{OrgID: orgID, IncludeRevoked: true})
	must(t, err, "find tokens")
	for _, tok := range all {
		if tok.ID == id {
			return tok
		}
	}
	t.Fatalf("token %s not found", id)
	return nil
}
