package runner

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/release"
)

func TestInWindow(t *testing.T) {
	tests := []struct {
		h, start, end int
		want          bool
	}{
		{10, 10, 12, true},
		{11, 10, 12, true},
		{12, 10, 12, false},
		{9, 10, 12, false},
		// endHour defaults to startHour+2: 23 gives 23 to 1, across midnight.
		{23, 23, 1, true},
		{0, 23, 1, true},
		{1, 23, 1, false},
		{22, 23, 1, false},
		{22, 22, 2, true},
		{1, 22, 2, true},
		{2, 22, 2, false},
		{12, 22, 2, false},
		// The same start and end: the whole day.
		{5, 7, 7, true},
	}
	for _, tt := range tests {
		if got := InWindow(tt.h, tt.start, tt.end); got != tt.want {
			t.Errorf("InWindow(%d, %d, %d) = %v, want %v", tt.h, tt.start, tt.end, got, tt.want)
		}
	}
}

// TestVerifyDownload: an archive is installed only when the SHA256SUMS the
// desired state carries is signed by the key the runner trusts and the
// downloaded bytes match its line; a tampered download and a release
// signed by another key are refused, over a real HTTP download.
func TestVerifyDownload(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho v2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	trusted, _ := release.GenerateKey()
	other, _ := release.GenerateKey()
	target := release.HostTarget()
	rel := filepath.Join(dir, "rel")
	m, err := release.Package(rel, release.Manifest{Version: "v2.0.0"}, map[release.Target]string{target: bin}, trusted)
	if err != nil {
		t.Fatal(err)
	}
	name := m.Artifacts[0].File
	good, _ := os.ReadFile(filepath.Join(rel, name))
	sums, _ := os.ReadFile(filepath.Join(rel, release.SumsFile))
	sig, _ := os.ReadFile(filepath.Join(rel, release.SigFile))
	tampered := bytes.Clone(good)
	tampered[len(tampered)/2] ^= 0xff

	tests := []struct {
		name    string
		serve   []byte
		sig     []byte
		wantErr string
	}{
		{name: "Good", serve: good, sig: sig},
		{name: "Tampered", serve: tampered, sig: sig, wantErr: "SHA-256"},
		{name: "OtherKey", serve: good, sig: signWith(other, sums), wantErr: "does not match the release public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer tok" {
					http.Error(w, "no", http.StatusUnauthorized)
					return
				}
				w.Write(tt.serve)
			}))
			defer srv.Close()
			dst := filepath.Join(t.TempDir(), name)
			if err := fetch(context.Background(), srv.Client(), srv.URL+"/x", "tok", dst); err != nil {
				t.Fatalf("fetch: %v", err)
			}
			w := &runnerv1.RunnerUpdate{Version: "v2.0.0", Archive: name, Sha256: m.Artifacts[0].SHA256, Sums: sums, SumsSignature: tt.sig}
			err := verifyDownload(dst, w, trusted.Public().(release.PublicKey))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("verify: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("verify = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

func signWith(key release.PrivateKey, b []byte) []byte { return ed25519.Sign(key, b) }
