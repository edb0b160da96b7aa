package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

// pageTemplate is one page: the layout with the page's blocks.
type pageTemplate struct{ t *template.Template }

// mustParsePages parses every page with the layout; a broken template is a
// programming error, caught by any test that starts a server.
func mustParsePages() map[string]*pageTemplate {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*pageTemplate{}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "layout" || base == "partials" {
			continue
		}
		t := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", n))
		pages[base] = &pageTemplate{t: t}
	}
	return pages
}

func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	p, ok := h.pages[name]
	if !ok {
		panic("console: no template " + name)
	}
	var buf bytes.Buffer
	if err := p.t.Execute(&buf, v); err != nil {
		h.log.ErrorContext(r.Context(), "render console page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered: the control plane's log says why", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	if v.Nonce != "" {
		setSecurityHeaders(hd, v.Nonce)
	}
	hd.Set("Content-Type", "text/html; charset=utf-8")
	// Pages show live state and one-time secrets: never from a cache.
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

var funcs = template.FuncMap{
	"ago":      ago,
	"exact":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"short":    shortEnum,
	"tone":     tone,
	"join":     strings.Join,
	"deref":    func(t *time.Time) time.Time { return derefTime(t) },
	"hasTime":  func(t *time.Time) bool { return t != nil && !t.IsZero() },
	"add":      func(a, b int) int { return a + b },
	"contains": strings.Contains,
	"query":    query,
	"at":       func(now, t time.Time) map[string]any { return map[string]any{"Now": now, "T": t} },
	"checked":  checked,
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// ago says how long before now t was, in the words a list shows; the
// island keeps it current and the element's title has the exact time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 10*time.Second:
		return "just now"
	case d < time.Minute:
		s = fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h", int(d.Hours()))
	default:
		s = fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// shortEnum turns RUNNER_PHASE_ACTIVE into "active".
func shortEnum(v any) string {
	s := fmt.Sprint(v)
	for _, p := range []string{"RUNNER_PHASE_", "ENVIRONMENT_PHASE_", "RUNNER_KIND_", "RUNNER_PROVIDER_", "SERVICE_PHASE_", "TASK_EXECUTION_PHASE_"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			s = rest
			break
		}
	}
	return strings.ToLower(strings.ReplaceAll(s, "_", " "))
}

// tone is the colour class of a phase or status.
func tone(v any) string {
	switch shortEnum(v) {
	case "active", "running", "ready", "succeeded", "ok":
		return "good"
	case "degraded", "pending", "creating", "starting", "stopping", "updating", "deleting", "draining":
		return "warn"
	case "inactive", "failed", "deleted", "lost":
		return "bad"
	}
	return "neutral"
}

// query returns the query string of values without empty ones, for links
// that keep a list's filters.
func query(kv ...string) template.URL {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if b.Len() == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(template.URLQueryEscaper(kv[i]))
		b.WriteByte('=')
		b.WriteString(template.URLQueryEscaper(kv[i+1]))
	}
	return template.URL(b.String())
}
