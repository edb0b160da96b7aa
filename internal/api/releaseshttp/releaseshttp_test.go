package releaseshttp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/api/releaseshttp"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/releases"
	"github.com/runyard/runyard/internal/store/sqlite"
)

// tokens stands for the identity service: a runner's token and a user's.
type tokens struct{}

func (tokens) Authenticate(_ context.Context, secret string) (*identity.Caller, error) {
	switch secret {
	case "runner":
		return &identity.Caller{Subject: identity.Subject{ID: "r", Principal: identity.PrincipalRunner}, RunnerID: "r", OrgID: "o"}, nil
	case "user":
		return &identity.Caller{Subject: identity.Subject{ID: "u", Principal: identity.PrincipalUser}, OrgID: "o",
			Scopes: []identity.Scope{identity.ScopeAdmin}}, nil
	}
	return nil, apperr.Unauthenticated("unknown token")
}

// archive is a stable release of one archive of n random bytes.
func archive(t *testing.T, n int) (*releases.Release, []byte) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return &releases.Release{Channel: releases.ChannelStable, Version: "v1.0.0", Sums: []byte("s"), Signature: []byte("g"),
		PublishedAt: time.Unix(1, 0).UTC(), Archives: []releases.Archive{{OS: "linux", Arch: "amd64",
			File: "runyard_v1.0.0_linux_amd64.tar.gz", SHA256: hex.EncodeToString(sum[:]), Size: int64(n)}}}, b
}

// cutWriter records a response and calls once after the first write of
// the body.
type cutWriter struct {
	*httptest.ResponseRecorder
	once func()
}

func (w *cutWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseRecorder.Write(p)
	if w.once != nil {
		w.once()
		w.once = nil
	}
	return n, err
}

// TestDownload: a runner downloads an archive of several chunks whole, or
// from an offset with a Range whose If-Range is the archive's SHA-256 (a
// stale one gets the whole archive); callers that are no runner are
// refused as before; a publish of other bytes under the same name during
// a download cuts it short of its Content-Length, with no byte of the new
// archive in it.
func TestDownload(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "runyard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rel, data := archive(t, 3*releases.ChunkSize+11)
	a := rel.Archives[0]
	if err := st.PublishRelease(context.Background(), rel, map[string][]byte{a.File: data}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	releaseshttp.Mount(mux, tokens{}, &releases.Service{Store: st}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	get := func(token string, h map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, releases.DownloadPath(releases.ChannelStable, a.File), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range h {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		return w
	}

	if w := get("", nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("download without a token: %d, want 401", w.Code)
	}
	if w := get("user", nil); w.Code != http.StatusForbidden {
		t.Fatalf("download with a user's token: %d, want 403", w.Code)
	}
	w := get("runner", nil)
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) {
		t.Fatalf("download: %d with %d bytes, want 200 with the %d of the archive", w.Code, w.Body.Len(), len(data))
	}
	etag := `"` + a.SHA256 + `"`
	if h := w.Header(); h.Get("Content-Length") != strconv.Itoa(len(data)) || h.Get("ETag") != etag || h.Get("Content-Type") != "application/gzip" {
		t.Fatalf("download headers %v", h)
	}
	from := releases.ChunkSize + 5
	w = get("runner", map[string]string{"Range": "bytes=" + strconv.Itoa(from) + "-", "If-Range": etag})
	if w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), data[from:]) {
		t.Fatalf("resumed download: %d with %d bytes, want 206 with the last %d", w.Code, w.Body.Len(), len(data)-from)
	}
	w = get("runner", map[string]string{"Range": "bytes=" + strconv.Itoa(from) + "-", "If-Range": `"stale"`})
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) {
		t.Fatalf("resume of another archive: %d with %d bytes, want 200 with the whole archive", w.Code, w.Body.Len())
	}

	// Other bytes under the same name, published once the body started.
	_, other := archive(t, len(data))
	otherRel := *rel
	sum := sha256.Sum256(other)
	otherRel.Archives = []releases.Archive{a}
	otherRel.Archives[0].SHA256 = hex.EncodeToString(sum[:])
	cw := &cutWriter{ResponseRecorder: httptest.NewRecorder(), once: func() {
		if err := st.PublishRelease(context.Background(), &otherRel, map[string][]byte{a.File: other}); err != nil {
			t.Errorf("publish during the download: %v", err)
		}
	}}
	req := httptest.NewRequest(http.MethodGet, releases.DownloadPath(releases.ChannelStable, a.File), nil)
	req.Header.Set("Authorization", "Bearer runner")
	mux.ServeHTTP(cw, req)
	body := cw.Body.Bytes()
	if len(body) >= len(data) || !bytes.Equal(body, data[:len(body)]) {
		t.Fatalf("download during a publish: %d bytes, want fewer than %d, all of the archive it started on", len(body), len(data))
	}
}
