package console

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/automations/spec"
	"github.com/runyard/runyard/internal/identity"
)

type fileData struct {
	EnvID, EnvName string
	// Text is the file shown in the editor: the environment's, or what the
	// user posted.
	Text string
	// Lines numbers the editor's gutter (1..n).
	Lines []int
	// ErrLine is the line of the file's error, 0 for none.
	ErrLine int
	// Valid says what a valid file would apply.
	Valid string
}

func newFileData(envID, envName, text string) *fileData {
	d := &fileData{EnvID: envID, EnvName: envName, Text: text}
	n := strings.Count(text, "\n") + 1
	if strings.HasSuffix(text, "\n") {
		n--
	}
	for i := 1; i <= max(n, 1); i++ {
		d.Lines = append(d.Lines, i)
	}
	return d
}

// automationsFile is the page of an environment's automations file: its
// file-managed services and tasks as a file (automations.Manager.File), in
// an editor whose posts validate or apply it.
func (h *handler) automationsFile(ctx context.Context, r *http.Request, v *view) (string, error) {
	d, err := h.fileView(ctx, r, v)
	if err != nil {
		return "", err
	}
	f, err := h.svc.Automations.File(ctx, d.EnvID)
	if err != nil {
		return "", err
	}
	text, err := spec.Format(f)
	if err != nil {
		return "", err
	}
	*d = *newFileData(d.EnvID, d.EnvName, string(text))
	v.Data = d
	return "automations", nil
}

// fileView reads the page's environment and sets the view's title.
func (h *handler) fileView(ctx context.Context, r *http.Request, v *view) (*fileData, error) {
	e, err := h.svc.Environments.Get(ctx, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	name := e.Name
	if name == "" {
		name = e.ID
	}
	v.Title, v.Nav = "Automations file of "+name, "environments"
	return &fileData{EnvID: e.ID, EnvName: name}, nil
}

// postedFile reads the file the form posted, and the page to show it in.
func (h *handler) postedFile(ctx context.Context, r *http.Request, v *view) (*fileData, []byte, error) {
	d, err := h.fileView(ctx, r, v)
	if err != nil {
		return nil, nil, err
	}
	text := strings.ReplaceAll(r.PostFormValue("file"), "\r\n", "\n")
	*d = *newFileData(d.EnvID, d.EnvName, text)
	v.Data = d
	return d, []byte(text), nil
}

// fileError shows the posted file again with err, marked at its line.
func fileError(d *fileData, data []byte, err error) error {
	d.ErrLine = automations.FileLine(data, err)
	return &formError{"automations", err}
}

// automationsValidate checks the posted file as an apply would, and
// changes nothing.
func (h *handler) automationsValidate(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	d, data, err := h.postedFile(ctx, r, v)
	if err != nil {
		return "", "", err
	}
	f, err := automations.CheckFile(data)
	if err != nil {
		return "", "", fileError(d, data, err)
	}
	d.Valid = fmt.Sprintf("The file is valid: applying it makes %s and %s.", plural(len(f.Services), "service"), plural(len(f.Tasks), "task"))
	return "", "automations", nil
}

// automationsApply applies the posted file with UpsertFile, the API's
// UpsertAutomationsFile, and goes to the environment's page.
func (h *handler) automationsApply(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	// UpsertFile refuses a caller without the scope anyway; asking first
	// says so before anything about the environment or the file.
	if _, err := identity.Require(ctx, identity.ScopeEnvironmentsWrite); err != nil {
		return "", "", err
	}
	d, data, err := h.postedFile(ctx, r, v)
	if err != nil {
		return "", "", err
	}
	f, err := automations.CheckFile(data)
	if err != nil {
		return "", "", fileError(d, data, err)
	}
	if _, err := h.svc.Automations.UpsertFile(ctx, d.EnvID, f); err != nil {
		return "", "", fileError(d, data, err)
	}
	return "/environments/" + d.EnvID, "", nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
