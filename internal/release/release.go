// Package release builds, signs and verifies runyard's release archives.
//
// A release directory holds one archive per platform
// (runyard_VERSION_OS_ARCH.tar.gz, holding the runyard binary), SHA256SUMS
// (sha256sum's format, one line per archive), SHA256SUMS.sig (the raw
// 64-byte ed25519 signature of SHA256SUMS), release-public-key.pem (the key
// that checks it), release.json (what was built) and install.sh with that
// public key written in. Verifying is: the signature over SHA256SUMS with a
// public key the verifier already trusts, then the archive's SHA-256
// against its line there.
package release

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/runyard/runyard/internal/buildinfo"
)

// File names inside a release directory.
const (
	SumsFile      = "SHA256SUMS"
	SigFile       = "SHA256SUMS.sig"
	PublicKeyFile = "release-public-key.pem"
	ManifestFile  = "release.json"
	InstallScript = "install.sh"
	// BinaryName is the binary inside every archive.
	BinaryName = "runyard"
	// publicKeyMarker is the line of scripts/install.sh that Build
	// replaces with the release's public key.
	publicKeyMarker = "# RUNYARD_RELEASE_PUBLIC_KEY"
)

// Target is one platform a release is built for.
type Target struct{ OS, Arch string }

func (t Target) String() string { return t.OS + "/" + t.Arch }

// DefaultTargets are the platforms of a release: linux and darwin, amd64
// and arm64.
var DefaultTargets = []Target{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}}

// HostTarget is the platform this process runs on.
func HostTarget() Target { return Target{runtime.GOOS, runtime.GOARCH} }

// ParseTargets reads "linux/amd64,darwin/arm64".
func ParseTargets(s string) ([]Target, error) {
	var out []Target
	for _, p := range strings.Split(s, ",") {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok || goos == "" || goarch == "" {
			return nil, fmt.Errorf("--targets: %q is not OS/ARCH", p)
		}
		out = append(out, Target{goos, goarch})
	}
	return out, nil
}

// ArchiveName is the archive of version for t.
func ArchiveName(version string, t Target) string {
	return fmt.Sprintf("runyard_%s_%s_%s.tar.gz", version, t.OS, t.Arch)
}

// Options say what Build builds.
type Options struct {
	Version, Commit, Date string
	Targets               []Target
	// SourceDir is the module to build (its ./cmd/runyard); OutDir must
	// not exist or be empty.
	SourceDir, OutDir string
	Key               ed25519.PrivateKey
	// Log receives progress lines; nil means none.
	Log io.Writer
}

// Artifact is one archive of a release.
type Artifact struct {
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
}

// Manifest is release.json.
type Manifest struct {
	Version   string     `json:"version"`
	Commit    string     `json:"commit"`
	Date      string     `json:"buildDate"`
	Artifacts []Artifact `json:"artifacts"`
}

// Build builds and signs a release into o.OutDir.
func Build(ctx context.Context, o Options) (*Manifest, error) {
	if o.Version == "" || strings.ContainsAny(o.Version, "/ _") {
		return nil, fmt.Errorf("--version: %q must be set and hold no '/', '_' or space", o.Version)
	}
	if len(o.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("release: no signing key")
	}
	if len(o.Targets) == 0 {
		o.Targets = DefaultTargets
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	if ents, err := os.ReadDir(o.OutDir); err != nil || len(ents) > 0 {
		return nil, fmt.Errorf("release: output directory %s must be empty", o.OutDir)
	}
	work, err := os.MkdirTemp("", "runyard-release-")
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	defer os.RemoveAll(work)

	m := &Manifest{Version: o.Version, Commit: o.Commit, Date: o.Date}
	var sums bytes.Buffer
	for _, t := range o.Targets {
		fmt.Fprintf(o.Log, "building %s\n", t)
		bin := filepath.Join(work, t.OS+"-"+t.Arch, BinaryName)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
			"-ldflags", "-s -w "+buildinfo.LDFlags(o.Version, o.Commit, o.Date), "-o", bin, "./cmd/runyard")
		cmd.Dir = o.SourceDir
		// A static binary: the archive runs on any distribution and in
		// a scratch-like image.
		cmd.Env = append(os.Environ(), "GOOS="+t.OS, "GOARCH="+t.Arch, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("release: build %s: %w\n%s", t, err, out)
		}
		name := ArchiveName(o.Version, t)
		sum, err := writeArchive(filepath.Join(o.OutDir, name), bin)
		if err != nil {
			return nil, fmt.Errorf("release: archive %s: %w", t, err)
		}
		m.Artifacts = append(m.Artifacts, Artifact{OS: t.OS, Arch: t.Arch, File: name, SHA256: sum})
		fmt.Fprintf(&sums, "%s  %s\n", sum, name)
	}
	if err := writeSigned(o.OutDir, sums.Bytes(), o.Key); err != nil {
		return nil, err
	}
	mj, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(o.OutDir, ManifestFile), append(mj, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	script, err := os.ReadFile(filepath.Join(o.SourceDir, "scripts", InstallScript))
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	script, err = EmbedPublicKey(script, o.Key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.OutDir, InstallScript), script, 0o755); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	return m, nil
}

// writeSigned writes SHA256SUMS, its signature and the public key.
func writeSigned(dir string, sums []byte, key ed25519.PrivateKey) error {
	pub, err := MarshalPublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{SumsFile: sums, SigFile: ed25519.Sign(key, sums), PublicKeyFile: pub} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("release: %w", err)
		}
	}
	return nil
}

// writeArchive writes a gzipped tar holding bin as BinaryName (mode 0755,
// no owner, a fixed time so that equal binaries give equal archives) and
// returns the archive's SHA-256 in hex.
func writeArchive(path, bin string) (string, error) {
	body, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	gz := gzip.NewWriter(io.MultiWriter(f, h))
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: BinaryName, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return "", err
	}
	if _, err := tw.Write(body); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Verify checks that sums is signed by pub (sig) and returns its lines,
// file name -> SHA-256 in hex.
func VerifySums(sums, sig []byte, pub ed25519.PublicKey) (map[string]string, error) {
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, sums, sig) {
		return nil, errors.New("the signature of " + SumsFile + " does not match the release public key")
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			return nil, fmt.Errorf("%s: malformed line %q", SumsFile, sc.Text())
		}
		out[name] = sum
	}
	return out, nil
}

// VerifyArchive checks the archive at path against the signed sums: the
// signature first, then the archive's SHA-256 under its base name.
func VerifyArchive(path string, sums, sig []byte, pub ed25519.PublicKey) error {
	want, err := VerifySums(sums, sig, pub)
	if err != nil {
		return err
	}
	name := filepath.Base(path)
	sum, ok := want[name]
	if !ok {
		return fmt.Errorf("%s is not listed in %s", name, SumsFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("%s: SHA-256 %s, but %s says %s", name, got, SumsFile, sum)
	}
	return nil
}

// VerifyDir verifies every archive of the release directory dir.
func VerifyDir(dir string, pub ed25519.PublicKey) error {
	sums, err := os.ReadFile(filepath.Join(dir, SumsFile))
	if err != nil {
		return err
	}
	sig, err := os.ReadFile(filepath.Join(dir, SigFile))
	if err != nil {
		return err
	}
	want, err := VerifySums(sums, sig, pub)
	if err != nil {
		return err
	}
	for name := range want {
		if err := VerifyArchive(filepath.Join(dir, name), sums, sig, pub); err != nil {
			return err
		}
	}
	return nil
}

// ExtractBinary writes the runyard binary of archive to dst (mode 0755).
func ExtractBinary(archive, dst string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(archive), err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%s holds no %s", filepath.Base(archive), BinaryName)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(archive), err)
		}
		if h.Name != BinaryName || h.Typeflag != tar.TypeReg {
			continue
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, io.LimitReader(tr, 1<<30)); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}
}

// GenerateKey makes a signing key pair.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	return priv, err
}

// MarshalPrivateKey encodes key as PKCS #8 PEM, as openssl genpkey writes it.
func MarshalPrivateKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKey encodes pub as SPKI PEM, which openssl reads.
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivateKey reads a PKCS #8 PEM ed25519 key.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("signing key: not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key: %T is not ed25519", k)
	}
	return ek, nil
}

// ParsePublicKey reads an SPKI PEM ed25519 key.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("public key: not PEM")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key: %T is not ed25519", k)
	}
	return ek, nil
}

// EmbedPublicKey writes pub into an install script in place of its marker
// line, so that the script a release ships trusts that release's key.
func EmbedPublicKey(script []byte, pub ed25519.PublicKey) ([]byte, error) {
	p, err := MarshalPublicKey(pub)
	if err != nil {
		return nil, err
	}
	line := []byte(publicKeyMarker + "\n")
	if !bytes.Contains(script, line) {
		return nil, fmt.Errorf("release: %s has no %q line", InstallScript, publicKeyMarker)
	}
	repl := "EMBEDDED_PUBLIC_KEY='" + string(p) + "'\n"
	return bytes.Replace(script, line, []byte(repl), 1), nil
}

// PrivateKey and PublicKey are the key types of release signatures.
type (
	PrivateKey = ed25519.PrivateKey
	PublicKey  = ed25519.PublicKey
)
