package console

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
)

type keysData struct {
	Keys []*identity.Token
	// Own says the list is the user's own keys; otherwise the caller is
	// a service account's admin key and sees the organization's.
	Own bool
	// Scopes are those a new key may carry: the user's role's (admin:
	// every scope), the service account's admin key's.
	Scopes []identity.Scope
	// Name, Checked and Expires are what the user typed in the form.
	Name    string
	Checked []string
	Expires string
	// Secret is a new key, shown once.
	Secret  string
	Created *identity.Token
	Next    string
	All     bool
}

// keysList is the API keys page: a user's own keys (whatever their role),
// or, for a service account's admin key, the organization's API keys.
func (h *handler) keysList(ctx context.Context, r *http.Request, v *view) (string, error) {
	v.Title, v.Nav = "API keys", "keys"
	v.watch(events.TypeAPIKey)
	q := r.URL.Query()
	d := &keysData{Own: v.Caller.UserID != "", All: q.Get("all") == "1"}
	page, err := paging.Parse(q.Get("token"), 50)
	if err != nil {
		return "", err
	}
	var keys []*identity.Token
	if d.Own {
		keys, d.Next, err = h.svc.Identity.ListOwnTokens(ctx, d.All, page)
	} else {
		keys, d.Next, err = h.svc.Identity.ListTokens(ctx, d.All, page)
	}
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if k.Principal != identity.PrincipalRunner {
			d.Keys = append(d.Keys, k)
		}
	}
	d.Scopes = grantable(v.Caller)
	v.Data = d
	return "keys", nil
}

// grantable lists the scopes the caller's new keys may carry, for the
// form's checkboxes: the service (Role.Allows) refuses others anyway.
func grantable(c *identity.Caller) []identity.Scope {
	if c.UserID == "" || c.Role.Has(identity.ScopeAdmin) {
		if c.Has(identity.ScopeAdmin) {
			return identity.KnownScopes
		}
		return nil
	}
	var out []identity.Scope
	for _, s := range identity.KnownScopes {
		if c.Role.Has(s) {
			out = append(out, s)
		}
	}
	return out
}

func (h *handler) keyCreate(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	in := identity.CreateAPIKeyInput{Name: r.PostFormValue("name"), Scopes: r.PostForm["scopes"]}
	expires := strings.TrimSpace(r.PostFormValue("expires"))
	form := func(err error) error {
		if _, lerr := h.keysList(ctx, r, v); lerr != nil {
			return lerr
		}
		d := v.Data.(*keysData)
		d.Name, d.Checked, d.Expires = in.Name, in.Scopes, expires
		return &formError{tmpl: "keys", err: err}
	}
	if expires != "" {
		t, err := time.Parse("2006-01-02", expires)
		if err != nil {
			return "", "", form(apperr.Invalid("expires", "must be a date like 2027-01-31, got %q", expires))
		}
		in.ExpiresAt = &t
	}
	key, secret, err := h.svc.Identity.CreateAPIKey(ctx, in)
	if apperr.Is(err, apperr.CodeInvalid) || apperr.Is(err, apperr.CodePermissionDenied) && v.Caller.UserID != "" {
		return "", "", form(err)
	}
	if err != nil {
		return "", "", err
	}
	audit.SetObject(ctx, audit.TypeAPIKey, key.ID)
	if _, err := h.keysList(ctx, r, v); err != nil {
		return "", "", err
	}
	d := v.Data.(*keysData)
	d.Secret, d.Created = secret, key
	v.Notice = "A new API key was made. It is shown only on this page: copy it now."
	return "", "keys", nil
}

// keyRevoke revokes a key: a user their own, an admin key any of the
// organization's; the service refuses the last admin key, saying so.
func (h *handler) keyRevoke(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	_, err := h.svc.Identity.RevokeToken(ctx, r.PathValue("id"), false)
	if apperr.Is(err, apperr.CodeFailedPrecondition) {
		if _, lerr := h.keysList(ctx, r, v); lerr != nil {
			return "", "", lerr
		}
		return "", "", &formError{tmpl: "keys", err: err}
	}
	if err != nil {
		return "", "", err
	}
	return "/keys", "", nil
}

func checked(list []string, s identity.Scope) bool { return slices.Contains(list, string(s)) }
