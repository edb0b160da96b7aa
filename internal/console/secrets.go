package console

import (
	"context"
	"net/http"
	"strings"

	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/paging"
	"github.com/runyard/runyard/internal/secrets"
)

const typeSecret = "RESOURCE_TYPE_SECRET"

type secretsData struct {
	Secrets []*secrets.Secret
	Next    string
	// What the user typed in the create form, but its value: a value is
	// never sent back to the browser.
	Name, Mount, FilePath string
}

// secretsList is the page of the organization's secrets: names and mounts,
// never values, which go in through the forms and do not come out.
func (h *handler) secretsList(ctx context.Context, r *http.Request, v *view) (string, error) {
	v.Title, v.Nav = "Secrets", "secrets"
	v.watch(events.TypeSecret)
	d := &secretsData{Mount: "env"}
	if err := h.listSecrets(ctx, r.URL.Query().Get("token"), d); err != nil {
		return "", err
	}
	v.Data = d
	return "secrets", nil
}

func (h *handler) listSecrets(ctx context.Context, token string, d *secretsData) error {
	page, err := paging.Parse(token, listPage)
	if err != nil {
		return err
	}
	d.Secrets, d.Next, err = h.svc.Secrets.List(ctx, nil, page)
	return err
}

// secretCreate makes an organization secret mounted as the form says.
func (h *handler) secretCreate(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	v.Title, v.Nav = "Secrets", "secrets"
	d := &secretsData{Name: strings.TrimSpace(r.PostFormValue("name")), Mount: r.PostFormValue("mount"), FilePath: strings.TrimSpace(r.PostFormValue("file_path"))}
	v.Data = d
	in := secrets.CreateInput{Name: d.Name, Value: secrets.Value(r.PostFormValue("value"))}
	switch d.Mount {
	case "env":
		in.EnvironmentVariable = true
	case "file":
		in.FilePath = d.FilePath
	}
	if _, err := h.svc.Secrets.Create(ctx, in); err != nil {
		if lerr := h.listSecrets(ctx, "", d); lerr != nil {
			return "", "", lerr
		}
		return "", "", &formError{"secrets", err}
	}
	return "/secrets", "", nil
}

func (h *handler) secretUpdate(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	if err := h.svc.Secrets.UpdateValue(ctx, r.PathValue("id"), secrets.Value(r.PostFormValue("value"))); err != nil {
		return "", "", err
	}
	return "/secrets", "", nil
}

func (h *handler) secretDelete(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	if err := h.svc.Secrets.Delete(ctx, r.PathValue("id")); err != nil {
		return "", "", err
	}
	return "/secrets", "", nil
}
