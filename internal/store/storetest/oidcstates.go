package storetest

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/sso"
	"github.com/runyard/runyard/internal/store"
)

// testLoginStates: a login state round-trips once (a second take, even a
// concurrent one, is not_found), and storing one drops the expired ones.
func testLoginStates(t *testing.T, s store.Store) {
	st := &sso.LoginState{StateHash: "s1", BrowserHash: "b1", Nonce: "n1", Verifier: "v1", ReturnTo: "/x?y=1",
		CreatedAt: base, ExpiresAt: base.Add(sso.StateLifetime)}
	must(t, s.CreateLoginState(ctx, st), "create")
	wantCode(t, s.CreateLoginState(ctx, st), apperr.CodeConflict, "same state twice")
	got, err := s.TakeLoginState(ctx, "s1")
	must(t, err, "take")
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, st)
	}
	_, err = s.TakeLoginState(ctx, "s1")
	wantCode(t, err, apperr.CodeNotFound, "second take")

	// Of concurrent takes, exactly one gets the state.
	must(t, s.CreateLoginState(ctx, &sso.LoginState{StateHash: "s2", CreatedAt: base, ExpiresAt: base.Add(time.Minute)}), "create s2")
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken, notFound := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.TakeLoginState(ctx, "s2")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				taken++
			case apperr.Is(err, apperr.CodeNotFound):
				notFound++
			default:
				t.Errorf("concurrent take: %v", err)
			}
		}()
	}
	wg.Wait()
	if taken != 1 || notFound != 7 {
		t.Fatalf("concurrent takes: %d taken, %d not found; want 1 and 7", taken, notFound)
	}

	// A new state drops the ones expired before it was created.
	must(t, s.CreateLoginState(ctx, &sso.LoginState{StateHash: "old", CreatedAt: base, ExpiresAt: base.Add(time.Minute)}), "create old")
	must(t, s.CreateLoginState(ctx, &sso.LoginState{StateHash: "live", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}), "create live")
	later := base.Add(2 * time.Minute)
	must(t, s.CreateLoginState(ctx, &sso.LoginState{StateHash: "new", CreatedAt: later, ExpiresAt: later.Add(time.Minute)}), "create new")
	_, err = s.TakeLoginState(ctx, "old")
	wantCode(t, err, apperr.CodeNotFound, "expired state after a newer sign-in")
	for _, h := range []string{"live", "new"} {
		_, err := s.TakeLoginState(ctx, h)
		must(t, err, "take "+h)
	}
}
