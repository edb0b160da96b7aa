// Package releaseshttp is the HTTP surface of runner releases
// (internal/releases): publishing a release directory (multipart upload,
// one part per file), listing the channels' releases, and the runners'
// authenticated download of an archive.
package releaseshttp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path/filepath"
	"time"

	"github.com/runyard/runyard/internal/api/apiauth"
	"github.com/runyard/runyard/internal/api/jsonerr"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/releases"
)

// Route patterns.
const (
	PublishRoute  = "POST /api/v1/releases/{channel}"
	ListRoute     = "GET /api/v1/releases"
	DownloadRoute = "GET /runner/v1/releases/{channel}/{file}"
	// PublishPrefix starts the path of a publish: the request guard lets
	// its body be as large as releases.MaxUploadBytes.
	PublishPrefix = "/api/v1/releases/"
)

// Routes lists the patterns Mount registers.
func Routes() []string { return []string{PublishRoute, ListRoute, DownloadRoute} }

// Service is what the routes call (releases.Service).
type Service interface {
	AuthorizePublish(ctx context.Context) error
	Publish(ctx context.Context, channel string, files map[string][]byte) (*releases.Release, error)
	List(ctx context.Context) ([]*releases.Release, error)
	Download(ctx context.Context, channel, file string) (*releases.ArchiveReader, error)
}

// Mount registers the routes on mux.
func Mount(mux *http.ServeMux, auth apiauth.Authenticator, svc Service, log *slog.Logger) {
	h := &handler{auth: auth, svc: svc, log: log}
	mux.HandleFunc(PublishRoute, h.publish)
	mux.HandleFunc(ListRoute, h.list)
	mux.HandleFunc(DownloadRoute, h.download)
}

type handler struct {
	auth apiauth.Authenticator
	svc  Service
	log  *slog.Logger
}

// Answer is the JSON of a publish and, as a list, of GET /api/v1/releases.
type Answer struct {
	Release  *releases.Release   `json:"release,omitempty"`
	Releases []*releases.Release `json:"releases,omitempty"`
}

func (h *handler) publish(w http.ResponseWriter, r *http.Request) {
	ctx, err := apiauth.Authenticate(r.Context(), h.auth, r.Header)
	if err != nil {
		jsonerr.Write(w, r, h.log, err)
		return
	}
	// The files are read only for a caller who may publish: the domain
	// service checks again, but nobody else's body is read.
	if err := h.svc.AuthorizePublish(ctx); err != nil {
		jsonerr.Write(w, r, h.log, err)
		return
	}
	files, err := readFiles(w, r)
	if err != nil {
		jsonerr.Write(w, r, h.log, err)
		return
	}
	rel, err := h.svc.Publish(ctx, r.PathValue("channel"), files)
	if err != nil {
		jsonerr.Write(w, r, h.log, err)
		return
	}
	jsonerr.JSON(w, http.StatusOK, Answer{Release: rel})
}

// readFiles reads a multipart body: each part with a file name is a file of
// the release directory, by its base name.
func readFiles(w http.ResponseWriter, r *http.Request) (map[string][]byte, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "multipart/form-data" {
		return nil, apperr.Invalid("Content-Type", "send the release directory's files as multipart/form-data (runyard releases publish does)")
	}
	// Large archives over a slow link: the publish gets longer than the
	// server's read timeout, and its size is bounded instead.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(30 * time.Minute))
	r.Body = http.MaxBytesReader(w, r.Body, releases.MaxUploadBytes)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, apperr.Invalid("body", "%v", err)
	}
	files := map[string][]byte{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, apperr.Invalid("body", "a release may be at most %d bytes", releases.MaxUploadBytes)
			}
			return nil, apperr.Invalid("body", "%v", err)
		}
		name := p.FileName()
		if name == "" {
			continue
		}
		if name != filepath.Base(name) || name == "." || name == ".." {
			return nil, apperr.Invalid("file", "%q: send base names only", name)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, apperr.Invalid("body", "a release may be at most %d bytes", releases.MaxUploadBytes)
			}
			return nil, apperr.Invalid("body", "%v", err)
		}
		files[name] = b
	}
	return files, nil
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	ctx, err := apiauth.Authenticate(r.Context(), h.auth, r.Header)
	if err != nil {
		jsonerr.Write(w, r, h.log, err)
		return
	}
	rs, err := h.svc.List(ctx)
	if err != nil {
		jsonerr.Write(w, r, h.log, err)
		return
	}
	if rs == nil {
		rs = []*releases.Release{}
	}
	jsonerr.JSON(w, http.StatusOK, struct {
		Releases []*releases.Release `json:"releases"`
	}{rs})
}

// download streams an archive: http.ServeContent reads it a chunk at a time
// from the store while it writes (so a download holds about
// releases.ChunkSize, not the archive), and answers Range requests, with
// the archive's SHA-256 as ETag so that If-Range resumes only the same
// bytes. Once the status is sent, a failed read (the archive replaced by a
// publish, the database gone) can only cut the body short of its
// Content-Length, which the runner sees as a failed download.
func (h *handler) download(w http.ResponseWriter, r *http.Request) {
	ctx, err := apiauth.Authenticate(r.Context(), h.auth, r.Header)
	if err != nil {
		jsonerr.Write(w, r, h.log, err)
		return
	}
	ar, err := h.svc.Download(ctx, r.PathValue("channel"), r.PathValue("file"))
	if err != nil {
		jsonerr.Write(w, r, h.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("ETag", `"`+ar.Archive.SHA256+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, ar)
	if err := ar.Err(); err != nil && r.Context().Err() == nil {
		h.log.Warn("release download cut short", "file", ar.Archive.File, "err", err)
	}
}
