package sqlstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/runners"
)

// TestRunnerViewRules: a read that overlapped a drop keeps nothing, an
// entry expires after viewTTL, a runner of another organization is not
// answered, and the pages stay within their bound however many
// organizations list.
func TestRunnerViewRules(t *testing.T) {
	now := time.Now()
	r := &runners.Runner{ID: "r1", OrgID: "o1", Name: "one"}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, v *runnerView)
	}{
		{"KeptWithoutDrop", func(t *testing.T, v *runnerView) {
			v.put(v.gen.Load(), now, r)
			if v.get("o1", "r1", now) == nil {
				t.Fatal("a read with no drop meanwhile was not kept")
			}
		}},
		{"NotKeptAfterDrop", func(t *testing.T, v *runnerView) {
			gen := v.gen.Load()
			v.drop("o1", "other", false)
			v.put(gen, now, r)
			if v.get("o1", "r1", now) != nil {
				t.Fatal("a read that overlapped a drop was kept")
			}
		}},
		{"Expires", func(t *testing.T, v *runnerView) {
			v.put(v.gen.Load(), now, r)
			if v.get("o1", "r1", now.Add(viewTTL)) != nil {
				t.Fatal("an entry outlived viewTTL")
			}
		}},
		{"OtherOrganization", func(t *testing.T, v *runnerView) {
			v.put(v.gen.Load(), now, r)
			if v.get("o2", "r1", now) != nil {
				t.Fatal("a runner was answered to another organization")
			}
		}},
		{"PageDroppedWithMembers", func(t *testing.T, v *runnerView) {
			k := pageKey{limit: 10}
			v.putPage(v.gen.Load(), now, "o1", k, []*runners.Runner{r})
			if got := v.page("o1", k, now); len(got) != 1 {
				t.Fatalf("page: %v", got)
			}
			v.drop("o1", "r1", false)
			if v.page("o1", k, now) != nil {
				t.Fatal("a page answered without one of its runners")
			}
			v.putPage(v.gen.Load(), now, "o1", k, []*runners.Runner{r})
			v.drop("o1", "r2", true)
			if v.page("o1", k, now) != nil {
				t.Fatal("a page outlived a runner created or deleted in its organization")
			}
		}},
		{"PagesBounded", func(t *testing.T, v *runnerView) {
			for i := range 3 * viewMaxPages {
				v.putPage(v.gen.Load(), now, fmt.Sprintf("org-%d", i), pageKey{limit: 10}, []*runners.Runner{r})
				if v.npages > viewMaxPages {
					t.Fatalf("%d pages held, bound %d", v.npages, viewMaxPages)
				}
			}
		}},
		{"MemoGoesWithTheRunner", func(t *testing.T, v *runnerView) {
			k := pageKey{limit: 10}
			v.putPage(v.gen.Load(), now, "o1", k, []*runners.Runner{r})
			_, m1 := v.getMemo("o1", "r1", now)
			_, ms, pm := v.pageMemo("o1", k, now, true)
			if m1 == nil || len(ms) != 1 || ms[0] != m1 || pm == nil {
				t.Fatalf("memos: runner %p, page's runners %v, page %p", m1, ms, pm)
			}
			m1.Store("encoded")
			if _, m := v.getMemo("o1", "r1", now); m.Load() != "encoded" {
				t.Fatal("a runner's memo was not kept with it")
			}
			v.drop("o1", "r1", false)
			v.put(v.gen.Load(), now, r)
			_, m2 := v.getMemo("o1", "r1", now)
			if m2 == m1 || m2.Load() != nil {
				t.Fatal("a runner read again after a change kept the memo of the old one")
			}
			// The page is kept (same members); its runner's memo is new,
			// which is how a page's encoding knows it is stale.
			if _, ms, pm2 := v.pageMemo("o1", k, now, true); len(ms) != 1 || ms[0] != m2 || pm2 != pm {
				t.Fatalf("page after a change of its runner: memos %v, page memo %p (was %p)", ms, pm2, pm)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, &runnerView{}) })
	}
}
