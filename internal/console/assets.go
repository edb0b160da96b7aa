package console

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
	"sync"
)

// The islands' JavaScript and the console's CSS, built by
// scripts/console-build.sh from ts/ and committed, so that the binary
// serves them without Node and nothing is fetched at run time. Each file's
// name carries a hash of its content: it is cached for good, and a new
// build is a new name.
//
//go:embed assets
var assetFS embed.FS

const assetsPath = "/console/assets/"

// assetTable maps an entry's name (app.js) to its path with the hash.
type assetTable map[string]string

// gzipped holds each asset compressed once, at start.
var gzipped = map[string][]byte{}

// URL returns the path of an asset by its entry name.
func (a assetTable) URL(name string) string {
	if p, ok := a[name]; ok {
		return assetsPath + p
	}
	return assetsPath + name
}

// loadAssets reads the manifest and compresses the assets, once per process.
var loadAssets = sync.OnceValue(func() assetTable {
	b, err := assetFS.ReadFile("assets/manifest.json")
	if err != nil {
		panic("console: assets/manifest.json missing: run scripts/console-build.sh")
	}
	var t assetTable
	if err := json.Unmarshal(b, &t); err != nil {
		panic("console: assets/manifest.json: " + err.Error())
	}
	for _, p := range t {
		b, err := assetFS.ReadFile("assets/" + p)
		if err != nil {
			panic("console: asset " + p + " in the manifest is missing: run scripts/console-build.sh")
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(b)
		_ = zw.Close()
		gzipped[p] = buf.Bytes()
	}
	return t
})

// asset serves a built file. Only hashed names are served: the manifest
// and anything else in the directory are not.
func (h *handler) asset(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	known := false
	for _, p := range h.assets {
		if p == file {
			known = true
			break
		}
	}
	b, err := fs.ReadFile(assetFS, "assets/"+file)
	if !known || err != nil {
		http.Error(w, "no such console asset: reload the page (the control plane may have been upgraded)", http.StatusNotFound)
		return
	}
	switch {
	case strings.HasSuffix(file, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(file, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	if gz, ok := gzipped[file]; ok && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Vary", "Accept-Encoding")
		_, _ = w.Write(gz)
		return
	}
	_, _ = w.Write(b)
}
