package console

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
)

// auditPage is the audit log's page size.
const auditPage = 50

// auditSpan is how far back the audit page looks when no time is given.
const auditSpan = 24 * time.Hour

type auditData struct {
	Entries []*audit.Entry
	// Filters as the user set them; Since and Until as datetime-local
	// values (UTC).
	Actor, Action, Resource, Since, Until string
	Next                                  string
	// Token is the page's position, for the link back to the first page.
	Token string
	// Names are the members' emails by user id, to name people.
	Names map[string]string
}

// localFormat is the format of datetime-local inputs; the page works in
// UTC and says so.
const localFormat = "2006-01-02T15:04"

// auditList is the audit log page: its entries oldest first within the
// time range (the last day unless set), filtered by actor (a user's email
// or a subject id), action (the method), and resource (an object id),
// paged. It needs audit:read, as ListAuditLogs.
func (h *handler) auditList(ctx context.Context, r *http.Request, v *view) (string, error) {
	v.Title, v.Nav = "Audit log", "audit"
	v.watch(events.TypeAuditLog)
	if h.svc.Audit == nil {
		return "", &apperr.Error{Code: apperr.CodeUnavailable, Message: "this control plane keeps no audit log"}
	}
	if _, err := identity.Require(ctx, identity.ScopeAuditRead); err != nil {
		return "", err
	}
	q := r.URL.Query()
	d := &auditData{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		Resource: strings.TrimSpace(q.Get("resource")), Since: q.Get("since"), Until: q.Get("until"), Token: q.Get("token")}
	var req audit.ListRequest
	if d.Since == "" && d.Until == "" && !q.Has("since") {
		d.Since = v.Now.UTC().Add(-auditSpan).Format(localFormat)
	}
	for _, f := range []struct {
		field, value string
		dst          **time.Time
	}{{"since", d.Since, &req.Since}, {"until", d.Until, &req.Until}} {
		if f.value == "" {
			continue
		}
		t, err := time.ParseInLocation(localFormat, f.value, time.UTC)
		if err != nil {
			return "", apperr.Invalid(f.field, "must be a date and time like 2026-12-07T09:30 (UTC), got %q", f.value)
		}
		*f.dst = &t
	}
	if d.Actor != "" {
		id := d.Actor
		if strings.Contains(id, "@") && h.svc.Users != nil {
			// People are found by email; the log keeps their id.
			u, err := h.svc.Users.FindUser(ctx, id)
			if err != nil {
				return "", apperr.Invalid("actor", "no member has the email %q", id)
			}
			id = u.ID
		}
		req.ActorIDs = []string{id}
	}
	if d.Action != "" {
		req.Methods = []string{d.Action}
	}
	if d.Resource != "" {
		req.ObjectIDs = []string{d.Resource}
	}
	page, err := paging.Parse(d.Token, auditPage)
	if err != nil {
		return "", err
	}
	req.Page = page
	d.Entries, d.Next, err = h.svc.Audit.List(ctx, req)
	if err != nil {
		return "", err
	}
	if h.svc.Users != nil {
		// Best effort: an entry of someone who left shows their id.
		if ms, err := h.svc.Users.ListMembers(ctx, ""); err == nil {
			d.Names = make(map[string]string, len(ms))
			for _, m := range ms {
				d.Names[m.User.ID] = m.User.Email
			}
		}
	}
	v.Data = d
	return "audit", nil
}
