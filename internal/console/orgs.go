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
	"github.com/runyard/runyard/internal/users"
)

// The team pages: the organization switcher in the header, organizations
// (the installation admin's), members, invites and accounts (an
// organization's admins'), API keys and the audit log. Each page and action
// calls one domain service method with the caller's permissions; the rules
// (who may, the last admin, the role's scopes) are the services'.

// typeOrganization is the audit log's object type of an organization.
const typeOrganization = "RESOURCE_TYPE_ORGANIZATION"

// teamRoutes adds the team pages to the route table, after the others.
func (h *handler) teamRoutes(get func(string, pageFunc), post func(string, string, actionFunc)) {
	get("/orgs", h.orgsList)
	post("/orgs/new", typeOrganization, h.orgCreate)
	post("/orgs/{id}/rename", typeOrganization, h.orgRename)
	post("/orgs/{id}/delete", typeOrganization, h.orgDelete)
	get("/members", h.membersList)
	post("/members/add", audit.TypeUser, h.memberAdd)
	post("/members/{id}/role", audit.TypeUser, h.memberRole)
	post("/members/{id}/remove", audit.TypeUser, h.memberRemove)
	post("/members/{id}/disable", audit.TypeUser, h.memberDisable)
	post("/members/{id}/enable", audit.TypeUser, h.memberEnable)
	post("/members/{id}/password", audit.TypeUser, h.memberPassword)
	post("/invites/new", audit.TypeInvite, h.inviteCreate)
	post("/invites/{id}/revoke", audit.TypeInvite, h.inviteRevoke)
	get("/keys", h.keysList)
	post("/keys/new", audit.TypeAPIKey, h.keyCreate)
	post("/keys/{id}/revoke", audit.TypeAPIKey, h.keyRevoke)
	get("/audit", h.auditList)
}

// orgChoice is one organization of the header's switcher.
type orgChoice struct {
	ID, Name string
	Role     identity.Role
	Current  bool
}

// switcher fills the header's organization switcher: for a user signed in
// with a session (only a session switches, POST /auth/switch) who belongs
// to more than one organization.
func (h *handler) switcher(ctx context.Context, v *view) {
	c := v.Caller
	if h.svc.Users == nil || c == nil || c.UserID == "" || c.SessionID == "" {
		return
	}
	orgs, err := h.svc.Users.MyOrganizations(ctx)
	if err != nil {
		h.log.WarnContext(ctx, "organizations of the switcher", "err", err)
		return
	}
	if len(orgs) < 2 {
		return
	}
	for _, o := range orgs {
		v.Orgs = append(v.Orgs, orgChoice{ID: o.Org.ID, Name: o.Org.Name, Role: o.Role, Current: o.Org.ID == c.OrgID})
	}
}

// ---- organizations ----------------------------------------------------------

type orgsData struct {
	Orgs []*identity.Organization
	// Name is what the user typed in the create form.
	Name string
}

func (h *handler) orgsList(ctx context.Context, r *http.Request, v *view) (string, error) {
	v.Title, v.Nav = "Organizations", "orgs"
	v.watch(events.TypeUser, events.TypeOrganization)
	orgs, err := h.svc.Orgs.List(ctx)
	if err != nil {
		return "", err
	}
	v.Data = &orgsData{Orgs: orgs}
	return "orgs", nil
}

// orgsForm shows the organizations page again with err, keeping name.
func (h *handler) orgsForm(ctx context.Context, r *http.Request, v *view, err error) error {
	if _, lerr := h.orgsList(ctx, r, v); lerr != nil {
		return lerr
	}
	v.Data.(*orgsData).Name = r.PostFormValue("name")
	return &formError{tmpl: "orgs", err: err}
}

func (h *handler) orgCreate(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	org, err := h.svc.Orgs.Create(ctx, r.PostFormValue("name"))
	if apperr.Is(err, apperr.CodeInvalid) || apperr.Is(err, apperr.CodeConflict) {
		return "", "", h.orgsForm(ctx, r, v, err)
	}
	if err != nil {
		return "", "", err
	}
	audit.SetObject(ctx, typeOrganization, org.ID)
	return "/orgs", "", nil
}

// orgRename renames an organization: the installation admin any, an
// organization's admin their own. The console's routes name no
// organization of the caller's the way the API's do (runners and logs
// tokens never reach them), so a caller who may not rename any is refused
// before the id is looked at; the service decides the rest.
func (h *handler) orgRename(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	if !v.Caller.InstallationAdmin {
		if _, err := identity.Require(ctx, identity.ScopeAdmin); err != nil {
			return "", "", err
		}
	}
	_, err := h.svc.Orgs.Rename(ctx, r.PathValue("id"), r.PostFormValue("name"))
	if apperr.Is(err, apperr.CodeInvalid) || apperr.Is(err, apperr.CodeConflict) {
		if v.Caller.InstallationAdmin {
			return "", "", h.orgsForm(ctx, r, v, err)
		}
		return "", "", err
	}
	if err != nil {
		return "", "", err
	}
	if !v.Caller.InstallationAdmin {
		return "/members", "", nil
	}
	return "/orgs", "", nil
}

// orgDelete deletes an organization; the service refuses one that still
// has runners or environments, saying how many, and the page shows it.
func (h *handler) orgDelete(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	if _, err := identity.RequireInstallationAdmin(ctx); err != nil {
		return "", "", err
	}
	err := h.svc.Orgs.Delete(ctx, r.PathValue("id"))
	if apperr.Is(err, apperr.CodeFailedPrecondition) {
		return "", "", h.orgsForm(ctx, r, v, err)
	}
	if err != nil {
		return "", "", err
	}
	return "/orgs", "", nil
}

// ---- members, invites and accounts ------------------------------------------

type memberRow struct {
	*users.Member
	Self bool
}

type membersData struct {
	OrgID   string
	OrgName string
	Members []memberRow
	Invites []*users.Invite
	Roles   []identity.Role
	// Admin says whether the page offers the admin's controls: the
	// service decides again on every action.
	Admin bool
	// Email and Role are what the user typed in the add form.
	Email, Role string
	// Invite is a new invite, shown once.
	Invite *newInvite
}

// newInvite is an invite just made: its token and what to do with it.
type newInvite struct {
	*users.Invite
	Token   string
	Command string
	Link    string
}

func (h *handler) membersList(ctx context.Context, r *http.Request, v *view) (string, error) {
	v.Title, v.Nav = "Members", "members"
	v.watch(events.TypeOrganization)
	d, err := h.loadMembers(ctx, v)
	if err != nil {
		return "", err
	}
	v.Data = d
	return "members", nil
}

func (h *handler) loadMembers(ctx context.Context, v *view) (*membersData, error) {
	if h.svc.Users == nil {
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "this control plane does not manage users"}
	}
	c := v.Caller
	ms, err := h.svc.Users.ListMembers(ctx, "")
	if err != nil {
		return nil, err
	}
	d := &membersData{OrgID: c.OrgID, OrgName: v.Org, Roles: identity.KnownRoles, Role: string(identity.RoleMember),
		Admin: c.InstallationAdmin || c.Has(identity.ScopeAdmin)}
	for _, m := range ms {
		d.Members = append(d.Members, memberRow{Member: m, Self: m.User.ID == c.UserID})
	}
	if d.Admin {
		if d.Invites, err = h.svc.Users.ListInvites(ctx, ""); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// membersForm shows the members page again with err (the last-admin
// refusal, a bad email), keeping what the user typed in the add form.
func (h *handler) membersForm(ctx context.Context, r *http.Request, v *view, err error) error {
	d, lerr := h.loadMembers(ctx, v)
	if lerr != nil {
		return lerr
	}
	v.Title, v.Nav, v.Data = "Members", "members", d
	if e := r.PostFormValue("email"); e != "" {
		d.Email = e
	}
	if role := r.PostFormValue("role"); role != "" && r.URL.Path == "/members/add" {
		d.Role = role
	}
	return &formError{tmpl: "members", err: err}
}

// shown reports whether err is one the members page shows in place: bad
// input, a conflict, or a refusal of the state (the last admin).
func shown(err error) bool {
	return apperr.Is(err, apperr.CodeInvalid) || apperr.Is(err, apperr.CodeConflict) ||
		apperr.Is(err, apperr.CodeFailedPrecondition) || apperr.Is(err, apperr.CodeNotFound)
}

// memberAction runs fn and goes back to the members page, or shows the
// page again with fn's error in words.
func (h *handler) memberAction(ctx context.Context, r *http.Request, v *view, fn func() error) (string, string, error) {
	if err := fn(); err != nil {
		if shown(err) {
			return "", "", h.membersForm(ctx, r, v, err)
		}
		return "", "", err
	}
	return "/members", "", nil
}

func (h *handler) memberAdd(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	return h.memberAction(ctx, r, v, func() error {
		if h.svc.Users == nil {
			return &apperr.Error{Code: apperr.CodeUnavailable, Message: "this control plane does not manage users"}
		}
		// Who may add comes before what was typed.
		if err := h.svc.Users.CheckInviteAdmin(ctx, ""); err != nil {
			return err
		}
		email := strings.TrimSpace(r.PostFormValue("email"))
		if email == "" {
			return apperr.Invalid("email", "is required: the email of an existing account")
		}
		m, err := h.svc.Users.AddMember(ctx, "", email, r.PostFormValue("role"))
		if err == nil {
			audit.SetObject(ctx, audit.TypeUser, m.User.ID)
		}
		return err
	})
}

func (h *handler) memberRole(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	return h.memberAction(ctx, r, v, func() error {
		_, err := h.svc.Users.SetRole(ctx, "", r.PathValue("id"), r.PostFormValue("role"))
		return err
	})
}

func (h *handler) memberRemove(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	return h.memberAction(ctx, r, v, func() error { return h.svc.Users.RemoveMember(ctx, "", r.PathValue("id")) })
}

func (h *handler) memberDisable(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	return h.memberAction(ctx, r, v, func() error {
		_, err := h.svc.Users.SetDisabled(ctx, r.PathValue("id"), true)
		return err
	})
}

func (h *handler) memberEnable(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	return h.memberAction(ctx, r, v, func() error {
		_, err := h.svc.Users.SetDisabled(ctx, r.PathValue("id"), false)
		return err
	})
}

// memberPassword sets a member's password (an admin's reset); the server
// ends their sessions and lifts a lockout.
func (h *handler) memberPassword(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	if _, err := h.svc.Users.SetPassword(ctx, r.PathValue("id"), r.PostFormValue("password")); err != nil {
		if shown(err) {
			return "", "", h.membersForm(ctx, r, v, err)
		}
		return "", "", err
	}
	if _, err := h.membersList(ctx, r, v); err != nil {
		return "", "", err
	}
	v.Notice = "The password was set. The member's sessions have ended: they sign in with the new password."
	return "", "members", nil
}

// inviteCreate makes a one-time invite and shows its token once, in the
// page that answers the post (never in a URL), with how to use it.
func (h *handler) inviteCreate(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	var ttl time.Duration
	if s := strings.TrimSpace(r.PostFormValue("ttl")); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return "", "", h.membersForm(ctx, r, v, apperr.Invalid("ttl", "must be a duration like 48h or 30m, got %q", s))
		}
		ttl = d
	}
	inv, token, err := h.svc.Users.CreateInvite(ctx, "", r.PostFormValue("role"), ttl)
	if err != nil {
		if shown(err) {
			return "", "", h.membersForm(ctx, r, v, err)
		}
		return "", "", err
	}
	if _, err := h.membersList(ctx, r, v); err != nil {
		return "", "", err
	}
	server := strings.TrimRight(h.svc.PublicURL(), "/")
	v.Data.(*membersData).Invite = &newInvite{Invite: inv, Token: token,
		Command: "runyard join " + token + " --server " + server,
		// The token rides in the fragment, which a browser never sends to
		// a server (so no log holds it): the sign-in page's island reads
		// it and joins, or signs the person up, through the API.
		Link: server + "/signin#invite=" + token}
	v.Notice = "A new invite was made. Its token is shown only on this page: copy it now."
	return "", "members", nil
}

func (h *handler) inviteRevoke(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	return h.memberAction(ctx, r, v, func() error {
		_, err := h.svc.Users.RevokeInvite(ctx, "", r.PathValue("id"))
		return err
	})
}
