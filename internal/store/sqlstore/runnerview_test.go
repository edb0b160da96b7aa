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
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, &runnerView{}) })
	}
}
