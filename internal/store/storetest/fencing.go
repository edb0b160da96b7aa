package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
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
