package release_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/buildinfo"
	"github.com/runyard/runyard/internal/release"
)

const testVersion = "v9.8.7-test"

// builtRelease is one release for this machine's platform, built once: the
// go build is the slow part.
type builtRelease struct {
	dir     string
	key     ed25519.PrivateKey
	pubFile string
	archive string
}

func buildRelease(t *testing.T) *builtRelease {
	t.Helper()
	key, err := release.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m, err := release.Build(context.Background(), release.Options{
		Version: testVersion, Commit: "c0ffee", Date: "2026-12-07T00:00:00Z",
		Targets: []release.Target{release.HostTarget()}, SourceDir: "../..", OutDir: dir, Key: key,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Artifacts) != 1 {
		t.Fatalf("artifacts %+v", m.Artifacts)
	}
	return &builtRelease{dir: dir, key: key, pubFile: filepath.Join(dir, release.PublicKeyFile), archive: filepath.Join(dir, m.Artifacts[0].File)}
}

// copyRelease copies r's directory, for a test that tampers with it.
func (r *builtRelease) copy(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(r.dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		info, _ := e.Info()
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func runInstall(t *testing.T, script string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func binaryVersion(t *testing.T, bin string) buildinfo.Info {
	t.Helper()
	out, err := exec.Command(bin, "version", "--client", "-o", "json").Output()
	if err != nil {
		t.Fatalf("%s version: %v", bin, err)
	}
	var v struct{ Client buildinfo.Info }
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	return v.Client
}

func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds runyard")
	}
	r := buildRelease(t)
	pub := r.key.Public().(ed25519.PublicKey)

	t.Run("VerifiesAndRunsStamped", func(t *testing.T) {
		if err := release.VerifyDir(r.dir, pub); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(t.TempDir(), "runyard")
		if err := release.ExtractBinary(r.archive, bin); err != nil {
			t.Fatal(err)
		}
		if v := binaryVersion(t, bin); v.Version != testVersion || v.Commit != "c0ffee" || v.Date != "2026-12-07T00:00:00Z" {
			t.Fatalf("the released binary says %+v", v)
		}
		for _, name := range []string{release.SumsFile, release.SigFile, release.PublicKeyFile, release.ManifestFile, release.InstallScript} {
			if _, err := os.Stat(filepath.Join(r.dir, name)); err != nil {
				t.Errorf("release lacks %s: %v", name, err)
			}
		}
	})
	t.Run("InstallFromDir", func(t *testing.T) {
		binDir := filepath.Join(t.TempDir(), "bin")
		if out, err := runInstall(t, "../../scripts/install.sh", "--from", r.dir, "--public-key", r.pubFile, "--bin-dir", binDir); err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
		if v := binaryVersion(t, filepath.Join(binDir, "runyard")); v.Version != testVersion {
			t.Fatalf("installed %+v", v)
		}
	})
	t.Run("InstallDownloadedWithEmbeddedKey", func(t *testing.T) {
		srv := httptest.NewServer(http.FileServer(http.Dir(r.dir)))
		defer srv.Close()
		binDir := filepath.Join(t.TempDir(), "bin")
		// The release's own install.sh, without --public-key.
		if out, err := runInstall(t, filepath.Join(r.dir, release.InstallScript), "--base-url", srv.URL, "--bin-dir", binDir); err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
		if v := binaryVersion(t, filepath.Join(binDir, "runyard")); v.Version != testVersion {
			t.Fatalf("installed %+v", v)
		}
	})

	otherKey, _ := release.GenerateKey()
	otherPub, _ := release.MarshalPublicKey(otherKey.Public().(ed25519.PublicKey))
	refused := []struct {
		name    string
		tamper  func(t *testing.T, dir string) // on a copy of the release
		pubFile func(dir string) string        // "" means none
		want    string                         // in install.sh's message
	}{
		{"ErrTamperedArchive", func(t *testing.T, dir string) { appendTo(t, filepath.Join(dir, filepath.Base(r.archive)), "x") },
			func(dir string) string { return filepath.Join(dir, release.PublicKeyFile) }, "SHA-256"},
		{"ErrSumsRewrittenForTamperedArchive", func(t *testing.T, dir string) {
			a := filepath.Join(dir, filepath.Base(r.archive))
			appendTo(t, a, "x")
			b, _ := os.ReadFile(a)
			sum := sha256.Sum256(b)
			os.WriteFile(filepath.Join(dir, release.SumsFile), []byte(hex.EncodeToString(sum[:])+"  "+filepath.Base(a)+"\n"), 0o644)
		}, func(dir string) string { return filepath.Join(dir, release.PublicKeyFile) }, "signature"},
		{"ErrOtherKey", func(t *testing.T, dir string) {}, func(dir string) string {
			p := filepath.Join(dir, "other.pem")
			os.WriteFile(p, otherPub, 0o644)
			return p
		}, "signature"},
		{"ErrNoKey", func(t *testing.T, dir string) {}, func(string) string { return "" }, "--public-key"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			dir := r.copy(t)
			tt.tamper(t, dir)
			args := []string{"--from", dir}
			var key ed25519.PublicKey = pub
			if p := tt.pubFile(dir); p != "" {
				args = append(args, "--public-key", p)
				b, _ := os.ReadFile(p)
				key, _ = release.ParsePublicKey(b)
			}
			if tt.name != "ErrNoKey" {
				if err := release.VerifyDir(dir, key); err == nil {
					t.Error("VerifyDir accepted it")
				}
			}
			binDir := filepath.Join(t.TempDir(), "bin")
			out, err := runInstall(t, "../../scripts/install.sh", append(args, "--bin-dir", binDir)...)
			if err == nil || !strings.Contains(out, tt.want) {
				t.Fatalf("install.sh: %v, want refused with %q:\n%s", err, tt.want, out)
			}
			if _, err := os.Stat(filepath.Join(binDir, "runyard")); err == nil {
				t.Fatal("install.sh refused but installed runyard")
			}
		})
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(s)
	f.Close()
}

func TestParseTargets(t *testing.T) {
	got, err := release.ParseTargets("linux/amd64,darwin/arm64")
	if err != nil || len(got) != 2 || got[1] != (release.Target{OS: "darwin", Arch: "arm64"}) {
		t.Fatalf("ParseTargets = %v, %v", got, err)
	}
	if _, err := release.ParseTargets("linux"); err == nil {
		t.Fatal("ParseTargets(linux): no error")
	}
	if n := len(release.DefaultTargets); n != 4 {
		t.Fatalf("%d default targets, want linux and darwin on amd64 and arm64", n)
	}
}
