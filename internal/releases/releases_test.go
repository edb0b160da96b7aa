package releases_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/release"
	"github.com/runyard/runyard/internal/releases"
)

// releaseDir packages a one-platform release signed with key and returns
// its files.
func releaseDir(t *testing.T, key release.PrivateKey) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "rel")
	if _, err := release.Package(out, release.Manifest{Version: "v1.2.3", Commit: "abc"}, map[release.Target]string{{OS: "linux", Arch: "amd64"}: bin}, key); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(out, e.Name()))
		files[e.Name()] = b
	}
	return files
}

// TestVerify: a release directory verifies only with the key that signed
// it, with every listed archive present and intact; each refusal names the
// file at fault.
func TestVerify(t *testing.T) {
	key, _ := release.GenerateKey()
	other, _ := release.GenerateKey()
	pub := key.Public().(release.PublicKey)
	archive := release.ArchiveName("v1.2.3", release.Target{OS: "linux", Arch: "amd64"})
	tests := []struct {
		name   string
		edit   func(map[string][]byte)
		pub    release.PublicKey
		field  string
		wantOK bool
	}{
		{name: "OK", edit: func(map[string][]byte) {}, pub: pub, wantOK: true},
		{name: "OtherKey", edit: func(map[string][]byte) {}, pub: other.Public().(release.PublicKey), field: release.SigFile},
		{name: "Tampered", edit: func(f map[string][]byte) { f[archive] = append([]byte{}, append(f[archive], 0)...) }, pub: pub, field: archive},
		{name: "MissingArchive", edit: func(f map[string][]byte) { delete(f, archive) }, pub: pub, field: archive},
		{name: "Unsigned", edit: func(f map[string][]byte) { delete(f, release.SigFile) }, pub: pub, field: release.SigFile},
		{name: "NoSums", edit: func(f map[string][]byte) { delete(f, release.SumsFile) }, pub: pub, field: release.SumsFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := releaseDir(t, key)
			tt.edit(files)
			r, _, err := releases.Verify(files, tt.pub)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				if r.Version != "v1.2.3" || r.Commit != "abc" || len(r.Archives) != 1 || r.Archives[0].OS != "linux" {
					t.Fatalf("release = %+v", r)
				}
				return
			}
			if e := apperr.As(err); err == nil || e.Code != apperr.CodeInvalid || e.Field != tt.field {
				t.Fatalf("verify = %v, want invalid_argument naming %s", err, tt.field)
			}
		})
	}
}

// TestPublishRules: only the installation admin publishes, a bad channel
// is refused naming it, and without a configured public key nothing is
// published.
func TestPublishRules(t *testing.T) {
	key, _ := release.GenerateKey()
	files := releaseDir(t, key)
	admin := identity.NewContext(context.Background(), &identity.Caller{InstallationAdmin: true, Subject: identity.Subject{ID: "admin"}})
	user := identity.NewContext(context.Background(), &identity.Caller{Subject: identity.Subject{ID: "u"}, Scopes: []identity.Scope{identity.ScopeAdmin}})
	svc := &releases.Service{PublicKey: key.Public().(release.PublicKey)}
	if _, err := svc.Publish(user, "stable", files); !apperr.Is(err, apperr.CodePermissionDenied) {
		t.Fatalf("publish by an organization admin = %v, want permission_denied", err)
	}
	if _, err := svc.Publish(admin, "nightly", files); apperr.As(err).Field != "channel" {
		t.Fatalf("publish to channel nightly = %v, want invalid channel", err)
	}
	if _, err := (&releases.Service{}).Publish(admin, "stable", files); !apperr.Is(err, apperr.CodeFailedPrecondition) {
		t.Fatalf("publish without a public key = %v, want failed_precondition", err)
	}
}
