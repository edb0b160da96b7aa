package fleet_test

import (
	"testing"
	"time"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/fleet"
)

// ended waits for the session to end and returns Serve's error.
func (c *conn) ended(t *testing.T) error {
	t.Helper()
	for {
		select {
		case err := <-c.served:
			c.served <- err // for the cleanup
			return err
		case <-c.s.out: // what the fleet sent before it ended the session
		case <-time.After(wait):
			t.Fatal("the session did not end")
			return nil
		}
	}
}

// TestFencing_SupersededStreamChangesNothing holds two streams of one runner
// on two fleets sharing a database, as two replicas would (so the older
// stream is not cancelled in memory): every stream gets a higher epoch, and
// the older one's report and renewal are refused and end it with ABORTED.
func TestFencing_SupersededStreamChangesNothing(t *testing.T) {
	e := setup(t)
	replicaA := fleet.New(e.svc, 30*time.Second, discard)
	replicaA.SetEpochs(e.db)
	replicaB := fleet.New(e.svc, 30*time.Second, discard)
	replicaB.SetEpochs(e.db)
	r, rctx := e.newRunner(t, "fenced")

	for _, tc := range []struct {
		name  string
		stale func(t *testing.T, c *conn)
	}{
		{"Status", func(t *testing.T, c *conn) {
			c.send(t, &runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: &runnerv1.Status{Version: "stale"}}})
		}},
		{"PodStatus", func(t *testing.T, c *conn) {
			c.send(t, &runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_PodStatus{PodStatus: &runnerv1.PodStatus{Key: "k", State: runnerv1.PodState_POD_STATE_RUNNING}}})
		}},
		{"Renewal", func(t *testing.T, c *conn) {
			seen := lastSeen(t, e, r.ID)
			c.renew(t) // acknowledged in memory, refused at the flush
			flushNow(replicaA)
			if got := lastSeen(t, e, r.ID); !got.Equal(seen) {
				t.Errorf("a superseded stream's renewal moved last-seen from %v to %v", seen, got)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			older := connect(t, replicaA, rctx, &runnerv1.Status{Version: "older"})
			w1, _ := older.handshake(t)
			newer := connect(t, replicaB, rctx, &runnerv1.Status{Version: "newer"})
			w2, _ := newer.handshake(t)
			if w1.GetEpoch() <= 0 || w2.GetEpoch() <= w1.GetEpoch() {
				t.Fatalf("epochs %d then %d, want increasing from 1", w1.GetEpoch(), w2.GetEpoch())
			}
			tc.stale(t, older)
			if err := older.ended(t); !apperr.Is(err, apperr.CodeAborted) {
				t.Fatalf("the superseded stream ended with %v, want aborted", err)
			}
			got, err := e.svc.Get(e.admin, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Version != "newer" {
				t.Fatalf("runner version %q after the superseded stream's report, want %q", got.Status.Version, "newer")
			}
			// The newer stream still works.
			newer.renew(t)
			newer.close(t)
		})
	}
}
