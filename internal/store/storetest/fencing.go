package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/store"
)

// testExchangeRevokesAndRetries runs identity.Service's exchange on the
// store: a redemption revokes the runner's earlier access tokens (and says
// which), and the same key pair may retry an exchange whose answer it lost
// within identity.ExchangeRetryWindow; another key, no key or a later retry
// is refused.
func testExchangeRevokesAndRetries(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	r := newRunner(org.ID, "runner-fence")
	x, exchange := identity.NewExchangeToken(org.ID, r.ID, base)
	must(t, s.CreateRunner(ctx, r, x), "create runner")
	admin, adminSecret := newToken(org.ID, "admin")
	must(t, s.CreateToken(ctx, admin), "create api key")

	now := base.Add(time.Second)
	svc := identity.NewService(s)
	svc.Now = func() time.Time { return now }
	var revoked []string
	svc.Revoked = func(orgID, id string) {
		if orgID != org.ID {
			t.Errorf("Revoked for organization %s, want %s", orgID, org.ID)
		}
		revoked = append(revoked, id)
	}
	keyA, keyB := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	authOK := func(secret, what string) *identity.Caller {
		t.Helper()
		c, err := svc.Authenticate(ctx, secret)
		must(t, err, what)
		return c
	}
	authRefused := func(secret, what string) {
		t.Helper()
		_, err := svc.Authenticate(ctx, secret)
		wantCode(t, err, apperr.CodeUnauthenticated, what)
	}

	first, err := svc.ExchangeWithKey(ctx, exchange, keyA)
	must(t, err, "first exchange")
	firstID := authOK(first, "first access token").TokenID
	if len(revoked) != 0 {
		t.Fatalf("the first exchange revoked %v", revoked)
	}

	// The control plane crashed before the answer arrived: the same key
	// pair retries and gets a working token; the lost one is revoked.
	now = base.Add(30 * time.Second)
	second, err := svc.ExchangeWithKey(ctx, exchange, keyA)
	must(t, err, "retry with the same key within the window")
	authOK(second, "retried access token")
	authRefused(first, "the lost access token after the retry")
	if !slices.Equal(revoked, []string{firstID}) {
		t.Fatalf("revoked %v, want the lost token %s", revoked, firstID)
	}

	for _, tc := range []struct {
		name string
		at   time.Duration
		key  []byte
	}{
		{"AnotherKey", 40 * time.Second, keyB},
		{"NoKey", 40 * time.Second, nil},
		{"AfterTheWindow", time.Second + identity.ExchangeRetryWindow, keyA},
	} {
		now = base.Add(tc.at)
		_, err := svc.ExchangeWithKey(ctx, exchange, tc.key)
		wantCode(t, err, apperr.CodeUnauthenticated, "retry: "+tc.name)
	}
	authOK(second, "the retried token after refused retries")

	// A fresh exchange token for the same runner (a second daemon) revokes
	// the live daemon's token; API keys are untouched.
	y, fresh := identity.NewExchangeToken(org.ID, r.ID, now)
	must(t, s.CreateExchangeToken(ctx, y), "create exchange token")
	revoked = nil
	third, err := svc.ExchangeWithKey(ctx, fresh, keyB)
	must(t, err, "exchange a fresh token")
	authOK(third, "the newest access token")
	authRefused(second, "the older daemon's token after a new exchange")
	if len(revoked) != 1 {
		t.Fatalf("a new exchange revoked %v, want the one live token", revoked)
	}
	authOK(adminSecret, "the organization's API key")
}

// testRunnerEpochs covers the fencing of runner streams: each accepted
// stream gets the next epoch, a deleted runner accepts none, and the active
// pods of a runner are bound to the first epoch that claims them, only while
// that epoch is the runner's current one.
func testRunnerEpochs(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	r := newRunner(org.ID, "epochs")
	must(t, s.CreateRunner(ctx, r, nil), "create runner")
	other := newRunner(org.ID, "epochs-other")
	must(t, s.CreateRunner(ctx, other, nil), "create other runner")

	e1, err := s.AcceptRunnerStream(ctx, org.ID, r.ID)
	must(t, err, "accept first stream")
	e2, err := s.AcceptRunnerStream(ctx, org.ID, r.ID)
	must(t, err, "accept second stream")
	if e1 != 1 || e2 != 2 {
		t.Fatalf("epochs %d, %d; want 1, 2", e1, e2)
	}
	got, err := s.RunnerEpochs(ctx, []string{r.ID, other.ID, "00000000-0000-4000-8000-000000000000"})
	must(t, err, "runner epochs")
	if len(got) != 2 || got[r.ID] != 2 || got[other.ID] != 0 {
		t.Fatalf("RunnerEpochs = %v, want %s:2 and %s:0 only", got, r.ID, other.ID)
	}
	_, err = s.AcceptRunnerStream(ctx, newOrg(t, s).ID, r.ID)
	wantCode(t, err, apperr.CodeNotFound, "a stream of a runner of another organization")

	// Pods: two active on r, one finished, one on the other runner.
	mk := func(i int, runnerID string, st pods.Status) string {
		p := newPod(org.ID, i)
		p.RunnerID, p.Status = runnerID, st
		must(t, s.CreatePod(ctx, p), "create pod")
		return p.Key
	}
	running, pending := mk(1, r.ID, pods.StatusRunning), mk(2, r.ID, pods.StatusPending)
	mk(3, r.ID, pods.StatusTerminated)
	elsewhere := mk(4, other.ID, pods.StatusPending)

	// A superseded epoch claims nothing.
	_, err = s.ClaimRunnerPods(ctx, org.ID, r.ID, e1)
	wantCode(t, err, apperr.CodeAborted, "claim with a superseded epoch")
	claims, err := s.ClaimRunnerPods(ctx, org.ID, r.ID, e2)
	must(t, err, "claim with the current epoch")
	if len(claims) != 2 || claims[running] != e2 || claims[pending] != e2 {
		t.Fatalf("claims = %v, want both active pods bound to %d", claims, e2)
	}
	// A later stream finds them bound to the earlier one, and binds a new
	// pod to itself.
	e3, err := s.AcceptRunnerStream(ctx, org.ID, r.ID)
	must(t, err, "accept third stream")
	fresh := mk(5, r.ID, pods.StatusPending)
	claims, err = s.ClaimRunnerPods(ctx, org.ID, r.ID, e3)
	must(t, err, "claim with the third epoch")
	if claims[running] != e2 || claims[pending] != e2 || claims[fresh] != e3 {
		t.Fatalf("claims = %v, want the old pods on %d and the new one on %d", claims, e2, e3)
	}
	if c, err := s.ClaimRunnerPods(ctx, org.ID, other.ID, 0); err != nil || len(c) != 1 || c[elsewhere] != 0 {
		t.Fatalf("the other runner's claims = %v, %v: want its pod untouched", c, err)
	}
	_, err = s.ClaimRunnerPods(ctx, org.ID, "00000000-0000-4000-8000-000000000000", 1)
	wantCode(t, err, apperr.CodeNotFound, "claim for a missing runner")

	_, err = s.DeleteRunner(ctx, org.ID, r.ID, markDeleted(base))
	must(t, err, "delete runner")
	_, err = s.AcceptRunnerStream(ctx, org.ID, r.ID)
	wantCode(t, err, apperr.CodeNotFound, "a stream of a deleted runner")
}
