package console

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/preview"
)

// previewSignIn is the console's half of a browser's sign-in to a preview
// host (internal/preview): the preview host sent the browser here with a
// state; the console's own session (or key) decides, and the browser goes
// back to the preview host with a code bound to that host and state. A
// visitor who is not signed in signs in first and comes back here. Without
// a state (a link of the console's environment page) it opens the preview
// URL, which starts the sign-in when one is needed.
func (h *handler) previewSignIn(w http.ResponseWriter, r *http.Request) {
	ctx, _, err := h.caller(r)
	if apperr.Is(err, apperr.CodeUnauthenticated) {
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	if err != nil {
		h.renderError(w, r, nil, err)
		return
	}
	envID := r.PathValue("id")
	port, perr := strconv.Atoi(r.PathValue("port"))
	if perr != nil {
		port = 0 // SignIn answers not_found, after its scope check
	}
	q := r.URL.Query()
	if q.Get("state") == "" {
		// Only to a port the caller's organization's environment lists:
		// the same checks as a sign-in, without minting anything.
		if _, err := h.svc.Preview.SignIn(ctx, envID, port, "check", "/"); err != nil {
			h.renderError(w, r, nil, err)
			return
		}
		http.Redirect(w, r, h.svc.Preview.URL(envID, int32(port))+"/", http.StatusSeeOther)
		return
	}
	to, err := h.svc.Preview.SignIn(ctx, envID, port, q.Get("state"), q.Get("next"))
	if err != nil {
		h.renderError(w, r, nil, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// portLink is a port of an environment's spec as its page shows it.
type portLink struct {
	Port int32
	Name string
	// Admission is "owner" or "everyone".
	Admission string
	// URL is its preview URL, "" when previews are off.
	URL string
}

// portLinks lists e's ports with their preview URLs. The links open the
// preview host in a new tab, without an opener or a referrer: the page it
// shows is the environment's, which must not script the console's tab.
func (h *handler) portLinks(e *environments.Environment) []portLink {
	var out []portLink
	for _, p := range e.Spec.Ports {
		l := portLink{Port: p.Port, Name: p.Name, Admission: "owner"}
		if preview.AdmissionOf(e, p) == environments.AdmissionEveryone {
			l.Admission = "everyone"
		}
		if h.svc.Preview != nil {
			l.URL = h.svc.Preview.URL(e.ID, p.Port)
		}
		out = append(out, l)
	}
	return out
}
