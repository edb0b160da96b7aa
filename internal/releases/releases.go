// Package releases holds the runner releases the control plane serves, one
// per channel (stable, latest): `runyard releases publish` uploads a release
// directory as cmd/runyard-release builds it, the control plane checks its
// signature against the release public key it was configured with, and
// runners whose spec.configuration.autoUpdate is on receive the release of
// their channel in their desired state and download its archive for their
// platform (internal/runner/update.go). The archives live in the store, so
// that every control-plane replica serves the same bytes, in chunks of
// ChunkSize that a download reads one at a time (ArchiveReader).
package releases

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/release"
)

// Channel is a release channel.
type Channel string

const (
	ChannelStable Channel = "stable"
	ChannelLatest Channel = "latest"
)

// Channels are the channels, in the order lists show them.
var Channels = []Channel{ChannelStable, ChannelLatest}

// ParseChannel reads a channel as a user types it ("stable") or as the API
// names it ("RUNNER_RELEASE_CHANNEL_STABLE"); field names the flag or field.
func ParseChannel(field, s string) (Channel, error) {
	c := Channel(strings.ToLower(strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "RUNNER_RELEASE_CHANNEL_")))
	for _, ok := range Channels {
		if c == ok {
			return c, nil
		}
	}
	return "", apperr.Invalid(field, "%q is no release channel: use stable or latest", s)
}

// OfRunner is the channel of a runner's spec.configuration.releaseChannel:
// UNSPECIFIED means stable.
func OfRunner(apiName string) Channel {
	if c, err := ParseChannel("", apiName); err == nil {
		return c
	}
	return ChannelStable
}

// Archive is one platform's archive of a release.
type Archive struct {
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Release is the release a channel serves.
type Release struct {
	Channel   Channel `json:"channel"`
	Version   string  `json:"version"`
	Commit    string  `json:"commit,omitempty"`
	BuildDate string  `json:"buildDate,omitempty"`
	// Sums and Signature are SHA256SUMS and its ed25519 signature, as
	// published: a runner checks them with the key it trusts itself.
	Sums      []byte    `json:"-"`
	Signature []byte    `json:"-"`
	Archives  []Archive `json:"archives"`
	// PublishedAt and PublishedBy (the caller's subject) say who put it
	// there when.
	PublishedAt time.Time `json:"publishedAt"`
	PublishedBy string    `json:"publishedBy,omitempty"`
}

// ArchiveFor is r's archive for goos/goarch, if it has one.
func (r *Release) ArchiveFor(goos, goarch string) (Archive, bool) {
	for _, a := range r.Archives {
		if a.OS == goos && a.Arch == goarch {
			return a, true
		}
	}
	return Archive{}, false
}

// Store keeps releases.
type Store interface {
	// PublishRelease makes r (with data, its archives' bytes by file name)
	// its channel's release, replacing the one before in one transaction.
	PublishRelease(ctx context.Context, r *Release, data map[string][]byte) error
	// FindReleases returns the release of every channel that has one.
	FindReleases(ctx context.Context) ([]*Release, error)
	// FindRelease returns a channel's release; CodeNotFound when none.
	FindRelease(ctx context.Context, channel Channel) (*Release, error)
	// ReleaseArchiveChunk returns the stored chunk of file of a channel's
	// release that holds byte off (at most ChunkSize bytes), in buf if it
	// has the room, and the offset of its first byte. CodeNotFound when the
	// channel's release has no such file, when its SHA-256 is no longer sha
	// (a publish replaced it), or when off is past its end.
	ReleaseArchiveChunk(ctx context.Context, channel Channel, file, sha string, off int64, buf []byte) (start int64, data []byte, err error)
}

// ChunkSize is the most bytes of an archive the store keeps in one piece,
// and so about what one download holds in memory: a download reads the
// archive piece by piece while it writes the response.
const ChunkSize = 256 << 10

// MaxUploadBytes bounds a published release directory: four archives of a
// static binary with room to spare.
const MaxUploadBytes = 512 << 20

// Service is the releases' domain service.
type Service struct {
	Store Store
	// PublicKey checks what is published; nil refuses every publish.
	PublicKey ed25519.PublicKey
	Now       func() time.Time
	// Published, when set, is told after a channel got a new release, so
	// that runners on it learn of it at once.
	Published func(Channel)

	mu    sync.Mutex
	cache map[Channel]cached
}

type cached struct {
	r  *Release
	at time.Time
}

// currentTTL is how long Current trusts what it read: a release published
// on another replica reaches a runner's next desired state within it.
const currentTTL = 5 * time.Second

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Publish verifies a release directory (files by name: SHA256SUMS,
// SHA256SUMS.sig, release.json and the archives SHA256SUMS lists; other
// files are ignored) against the release public key and makes it channel's
// release. Only the installation admin publishes: a release runs on every
// organization's runners.
func (s *Service) Publish(ctx context.Context, channel string, files map[string][]byte) (*Release, error) {
	c, err := identity.RequireInstallationAdmin(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := ParseChannel("channel", channel)
	if err != nil {
		return nil, err
	}
	if len(s.PublicKey) != ed25519.PublicKeySize {
		return nil, apperr.FailedPrecondition("this control plane has no release public key, so it cannot check a release: start it with --release-public-key FILE (release-public-key.pem of the key that signs releases)")
	}
	r, data, err := Verify(files, s.PublicKey)
	if err != nil {
		return nil, err
	}
	r.Channel = ch
	r.PublishedAt = s.now().UTC().Truncate(time.Microsecond)
	r.PublishedBy = c.Subject.ID
	if err := s.Store.PublishRelease(ctx, r, data); err != nil {
		return nil, fmt.Errorf("publish release: %w", err)
	}
	s.mu.Lock()
	delete(s.cache, ch)
	s.mu.Unlock()
	if s.Published != nil {
		s.Published(ch)
	}
	return r, nil
}

// AuthorizePublish says whether the caller may publish, before anything
// is read of what it sends.
func (s *Service) AuthorizePublish(ctx context.Context) error {
	_, err := identity.RequireInstallationAdmin(ctx)
	return err
}

// Verify checks a release directory's files against pub and returns the
// release (without channel) and its archives' bytes. Every error names the
// file at fault.
func Verify(files map[string][]byte, pub ed25519.PublicKey) (*Release, map[string][]byte, error) {
	sums, ok := files[release.SumsFile]
	if !ok {
		return nil, nil, apperr.Invalid(release.SumsFile, "missing: publish a release directory as runyard-release builds it")
	}
	sig, ok := files[release.SigFile]
	if !ok {
		return nil, nil, apperr.Invalid(release.SigFile, "missing: the release is not signed")
	}
	want, err := release.VerifySums(sums, sig, pub)
	if err != nil {
		return nil, nil, apperr.Invalid(release.SigFile, "%s: publish only releases signed with the key whose public half this control plane trusts", err)
	}
	if len(want) == 0 {
		return nil, nil, apperr.Invalid(release.SumsFile, "lists no archive")
	}
	r := &Release{Sums: sums, Signature: sig}
	if mj, ok := files[release.ManifestFile]; ok {
		var m release.Manifest
		if err := json.Unmarshal(mj, &m); err != nil {
			return nil, nil, apperr.Invalid(release.ManifestFile, "not JSON: %v", err)
		}
		r.Version, r.Commit, r.BuildDate = m.Version, m.Commit, m.Date
	}
	data := map[string][]byte{}
	for name, sum := range want {
		version, goos, goarch, ok := ParseArchiveName(name)
		if !ok {
			return nil, nil, apperr.Invalid(release.SumsFile, "%q is not an archive name runyard_VERSION_OS_ARCH.tar.gz", name)
		}
		if r.Version == "" {
			r.Version = version
		}
		if version != r.Version {
			return nil, nil, apperr.Invalid(release.SumsFile, "%s is of version %s, the release of %s", name, version, r.Version)
		}
		b, ok := files[name]
		if !ok {
			return nil, nil, apperr.Invalid(name, "listed in %s but not published", release.SumsFile)
		}
		h := sha256.Sum256(b)
		if got := hex.EncodeToString(h[:]); got != sum {
			return nil, nil, apperr.Invalid(name, "SHA-256 %s, but %s says %s", got, release.SumsFile, sum)
		}
		data[name] = b
		r.Archives = append(r.Archives, Archive{OS: goos, Arch: goarch, File: name, SHA256: sum, Size: int64(len(b))})
	}
	sort.Slice(r.Archives, func(i, j int) bool { return r.Archives[i].File < r.Archives[j].File })
	return r, data, nil
}

// ParseArchiveName reads runyard_VERSION_OS_ARCH.tar.gz (release.ArchiveName).
func ParseArchiveName(name string) (version, goos, goarch string, ok bool) {
	rest, found := strings.CutPrefix(name, "runyard_")
	if !found {
		return "", "", "", false
	}
	rest, found = strings.CutSuffix(rest, ".tar.gz")
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(rest, "_")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" || strings.ContainsAny(rest, "/\\") {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// List returns the release of every channel that has one. Anyone who may
// read runners may see what their runners would update to.
func (s *Service) List(ctx context.Context) ([]*Release, error) {
	if _, err := identity.Require(ctx, identity.ScopeRunnersRead); err != nil {
		return nil, err
	}
	return s.Store.FindReleases(ctx)
}

// Download opens an archive of a channel's release for a runner: its
// bytes are read from the store a chunk at a time as the caller reads them,
// and only while the archive stays the one published.
func (s *Service) Download(ctx context.Context, channel, file string) (*ArchiveReader, error) {
	if _, err := identity.RequireRunner(ctx); err != nil {
		return nil, err
	}
	ch, err := ParseChannel("channel", channel)
	if err != nil {
		return nil, err
	}
	if _, _, _, ok := ParseArchiveName(file); !ok {
		return nil, apperr.NotFound("release archive %q not found", file)
	}
	return OpenArchive(ctx, s.Store, ch, file)
}

// OpenArchive opens file of a channel's release in st; CodeNotFound when
// the channel's release has no such file.
func OpenArchive(ctx context.Context, st Store, ch Channel, file string) (*ArchiveReader, error) {
	r, err := st.FindRelease(ctx, ch)
	if err != nil {
		return nil, err
	}
	for _, a := range r.Archives {
		if a.File == file {
			return &ArchiveReader{Archive: a, ctx: ctx, store: st, channel: ch}, nil
		}
	}
	return nil, apperr.NotFound("release archive %q not found", file)
}

// ArchiveReader reads an archive from the store, one chunk at a time (an
// io.ReadSeeker for http.ServeContent, whose ranges let a download resume).
// Every chunk is read on condition that the archive's SHA-256 is still the
// one it was opened with: after a publish replaced the archive, Read fails
// rather than go on with the new bytes.
type ArchiveReader struct {
	Archive Archive

	ctx     context.Context
	store   Store
	channel Channel
	pos     int64
	start   int64  // offset of chunk[0]
	chunk   []byte // the chunk read last, its buffer reused for the next
	err     error
}

// Read reads from the chunk that holds the position, reading it from the
// store when it is not the one read last.
func (r *ArchiveReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.pos >= r.Archive.Size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.pos < r.start || r.pos >= r.start+int64(len(r.chunk)) {
		// One buffer for every chunk of the download.
		start, b, err := r.store.ReleaseArchiveChunk(r.ctx, r.channel, r.Archive.File, r.Archive.SHA256, r.pos, r.chunk[:0])
		if err == nil && (start > r.pos || r.pos >= start+int64(len(b))) {
			err = fmt.Errorf("the chunk at %d of %d bytes does not hold byte %d", start, len(b), r.pos)
		}
		if err != nil {
			r.chunk = nil
			r.err = fmt.Errorf("read release archive %s at byte %d: %w", r.Archive.File, r.pos, err)
			return 0, r.err
		}
		r.start, r.chunk = start, b
	}
	n := copy(p, r.chunk[r.pos-r.start:])
	r.pos += int64(n)
	return n, nil
}

// Seek moves the position; nothing is read until the next Read.
func (r *ArchiveReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.Archive.Size
	default:
		return 0, fmt.Errorf("seek: whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek to %d: before the start", offset)
	}
	r.pos = offset
	return offset, nil
}

// Err is the error that stopped a Read, nil when none did.
func (r *ArchiveReader) Err() error { return r.err }

// Current is a channel's release for the runners' desired states, nil when
// the channel has none. It is read at most every currentTTL.
func (s *Service) Current(ctx context.Context, ch Channel) (*Release, error) {
	now := s.now()
	s.mu.Lock()
	if c, ok := s.cache[ch]; ok && now.Sub(c.at) < currentTTL {
		s.mu.Unlock()
		return c.r, nil
	}
	s.mu.Unlock()
	r, err := s.Store.FindRelease(ctx, ch)
	if apperr.Is(err, apperr.CodeNotFound) {
		r, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.cache == nil {
		s.cache = map[Channel]cached{}
	}
	s.cache[ch] = cached{r: r, at: now}
	s.mu.Unlock()
	return r, nil
}

// DownloadPath is where a runner downloads file of a channel's release, on
// the control plane's URL.
func DownloadPath(ch Channel, file string) string {
	return "/runner/v1/releases/" + string(ch) + "/" + file
}

// ErrNoArchive says a release has no archive for a runner's platform.
var ErrNoArchive = errors.New("the release has no archive for this platform")

// Equal reports whether two releases are the same publication (for tests
// and caches): the same signed sums.
func Equal(a, b *Release) bool {
	return a != nil && b != nil && a.Channel == b.Channel && bytes.Equal(a.Sums, b.Sums) && bytes.Equal(a.Signature, b.Signature)
}
