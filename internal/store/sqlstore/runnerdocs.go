package sqlstore

import (
	"encoding/json"
	"slices"
	"sync"

	"github.com/runyard/runyard/internal/runners"
)

// Decoding a runner's three JSON documents (spec, status, report) was most
// of what reading a runner cost beyond the query: a fifth of a ListRunners
// page. Runners' documents change rarely and many runners share the same
// ones, so each decoded document is remembered by its text, and a read
// that finds the same text takes a copy of the decoded value instead of
// decoding it again. The copies are deep (cloneSpec, cloneStatus,
// cloneReport; TestRunnerDocClones fails when a new field would be shared),
// so a caller changing the runner it got changes nothing else.

// docMemo remembers decoded documents of one type by their text.
type docMemo[T any] struct {
	mu    sync.RWMutex
	m     map[string]*T
	clone func(*T) T
}

// docMemoMax bounds each memo: a few MiB at most.
const docMemoMax = 4096

func (d *docMemo[T]) decode(text string, into *T) error {
	d.mu.RLock()
	v, ok := d.m[text]
	d.mu.RUnlock()
	if ok {
		*into = d.clone(v)
		return nil
	}
	var fresh T
	if err := json.Unmarshal([]byte(text), &fresh); err != nil {
		return err
	}
	*into = d.clone(&fresh)
	d.mu.Lock()
	if d.m == nil || len(d.m) >= docMemoMax {
		// Forgetting everything at the bound is enough: documents in use
		// come back after one decode each.
		d.m = make(map[string]*T)
	}
	d.m[text] = &fresh
	d.mu.Unlock()
	return nil
}

var (
	specDocs   = docMemo[runners.Spec]{clone: cloneSpec}
	statusDocs = docMemo[runners.Status]{clone: cloneStatus}
	reportDocs = docMemo[runners.Report]{clone: cloneReport}
)

func cloneSpec(s *runners.Spec) runners.Spec {
	out := *s
	if s.Configuration.UpdateWindow != nil {
		w := *s.Configuration.UpdateWindow
		out.Configuration.UpdateWindow = &w
	}
	out.Configuration.EncryptedHoneycombAPIKey = slices.Clone(s.Configuration.EncryptedHoneycombAPIKey)
	return out
}

func cloneStatus(s *runners.Status) runners.Status {
	out := *s
	out.AdditionalInfo = slices.Clone(s.AdditionalInfo)
	out.Capabilities = slices.Clone(s.Capabilities)
	if s.Gateway != nil {
		g := *s.Gateway
		out.Gateway = &g
	}
	out.PublicKey = slices.Clone(s.PublicKey)
	return out
}

func cloneReport(r *runners.Report) runners.Report {
	out := *r
	out.Labels = slices.Clone(r.Labels)
	out.Components = slices.Clone(r.Components)
	out.Capabilities = slices.Clone(r.Capabilities)
	out.PublicKey = slices.Clone(r.PublicKey)
	out.AgentTypes = slices.Clone(r.AgentTypes)
	out.AdditionalInfo = slices.Clone(r.AdditionalInfo)
	if r.Update != nil {
		u := *r.Update
		out.Update = &u
	}
	return out
}
