package storetest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/releases"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/sqlstore"
)

// testReleases: a channel's release round-trips with its archives' bytes;
// publishing again replaces release and archives at once (the old archive
// is gone); channels are independent; a channel without a release, or a
// file its release lacks, is not_found.
func testReleases(t *testing.T, s store.Store) {
	_, err := s.FindRelease(ctx, releases.ChannelStable)
	wantCode(t, err, apperr.CodeNotFound, "no release yet")
	all, err := s.FindReleases(ctx)
	must(t, err, "list empty")
	if all == nil || len(all) != 0 {
		t.Fatalf("FindReleases on an empty store = %#v, want an empty list", all)
	}

	v1 := &releases.Release{Channel: releases.ChannelStable, Version: "v1.0.0", Commit: "c1", BuildDate: "2026-01-01T00:00:00Z",
		Sums: []byte("sums-1\n"), Signature: []byte{1, 2, 3}, PublishedAt: base, PublishedBy: "admin",
		Archives: []releases.Archive{
			{OS: "darwin", Arch: "arm64", File: "runyard_v1.0.0_darwin_arm64.tar.gz", SHA256: "aa", Size: 3},
			{OS: "linux", Arch: "amd64", File: "runyard_v1.0.0_linux_amd64.tar.gz", SHA256: "bb", Size: 4},
		}}
	data1 := map[string][]byte{v1.Archives[0].File: []byte("mac"), v1.Archives[1].File: {0, 1, 2, 255}}
	must(t, s.PublishRelease(ctx, v1, data1), "publish v1")
	got, err := s.FindRelease(ctx, releases.ChannelStable)
	must(t, err, "find v1")
	if !reflect.DeepEqual(got, v1) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, v1)
	}
	if b := readArchive(t, s, releases.ChannelStable, v1.Archives[1]); !bytes.Equal(b, data1[v1.Archives[1].File]) {
		t.Fatalf("archive bytes = %v, want %v", b, data1[v1.Archives[1].File])
	}
	_, _, err = s.ReleaseArchiveChunk(ctx, releases.ChannelLatest, v1.Archives[1].File, v1.Archives[1].SHA256, 0, nil)
	wantCode(t, err, apperr.CodeNotFound, "the archive on another channel")

	latest := &releases.Release{Channel: releases.ChannelLatest, Version: "v1.1.0", Sums: []byte("l"), Signature: []byte("s"),
		PublishedAt: base, Archives: []releases.Archive{{OS: "linux", Arch: "amd64", File: "runyard_v1.1.0_linux_amd64.tar.gz", SHA256: "cc", Size: 1}}}
	must(t, s.PublishRelease(ctx, latest, map[string][]byte{latest.Archives[0].File: []byte("x")}), "publish latest")

	v2 := &releases.Release{Channel: releases.ChannelStable, Version: "v2.0.0", Sums: []byte("sums-2\n"), Signature: []byte{4},
		PublishedAt: base.Add(time.Second), Archives: []releases.Archive{{OS: "linux", Arch: "amd64", File: "runyard_v2.0.0_linux_amd64.tar.gz", SHA256: "dd", Size: 2}}}
	must(t, s.PublishRelease(ctx, v2, map[string][]byte{v2.Archives[0].File: []byte("v2")}), "publish v2")
	got, err = s.FindRelease(ctx, releases.ChannelStable)
	must(t, err, "find v2")
	if !reflect.DeepEqual(got, v2) {
		t.Fatalf("after a new publish:\n got %+v\nwant %+v", got, v2)
	}
	_, _, err = s.ReleaseArchiveChunk(ctx, releases.ChannelStable, v1.Archives[1].File, v1.Archives[1].SHA256, 0, nil)
	wantCode(t, err, apperr.CodeNotFound, "the replaced release's archive")
	all, err = s.FindReleases(ctx)
	must(t, err, "list")
	if len(all) != 2 || all[0].Version != "v2.0.0" || all[1].Version != "v1.1.0" {
		t.Fatalf("FindReleases = %+v, want stable v2.0.0 then latest v1.1.0", all)
	}
}

// readArchive reads a whole archive chunk by chunk, checking that each
// chunk starts where the one before ended and holds at most
// releases.ChunkSize bytes.
func readArchive(t *testing.T, s store.Store, ch releases.Channel, a releases.Archive) []byte {
	t.Helper()
	var out []byte
	for off := int64(0); off < a.Size; {
		start, b, err := s.ReleaseArchiveChunk(ctx, ch, a.File, a.SHA256, off, nil)
		must(t, err, fmt.Sprintf("chunk at %d", off))
		if start != off || len(b) == 0 || len(b) > releases.ChunkSize {
			t.Fatalf("chunk at %d of %s: starts at %d, %d bytes; want it to start there with 1 to %d bytes", off, a.File, start, len(b), releases.ChunkSize)
		}
		out = append(out, b...)
		off += int64(len(b))
	}
	_, _, err := s.ReleaseArchiveChunk(ctx, ch, a.File, a.SHA256, a.Size, nil)
	wantCode(t, err, apperr.CodeNotFound, "the chunk past the end")
	return out
}

// largeRelease is a release of one archive of n random bytes, file name and
// SHA-256 as Verify makes them.
func largeRelease(t *testing.T, version string, n int) (*releases.Release, []byte) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	file := "runyard_" + version + "_linux_amd64.tar.gz"
	return &releases.Release{Channel: releases.ChannelStable, Version: version, Sums: []byte("s"), Signature: []byte("g"), PublishedAt: base,
		Archives: []releases.Archive{{OS: "linux", Arch: "amd64", File: file, SHA256: hex.EncodeToString(sum[:]), Size: int64(n)}}}, b
}

// testReleaseChunks: an archive of several chunks is stored in chunks of at
// most releases.ChunkSize and reads back whole, from any offset (a resumed
// download); a chunk is read only under the archive's current SHA-256, so
// a reader that started before a publish of the same file name with other
// bytes fails rather than mix them, and one of the same bytes reads on.
func testReleaseChunks(t *testing.T, s store.Store) {
	n := 5*releases.ChunkSize + 123
	rel, data := largeRelease(t, "v1.0.0", n)
	a := rel.Archives[0]
	must(t, s.PublishRelease(ctx, rel, map[string][]byte{a.File: data}), "publish")
	if b := readArchive(t, s, releases.ChannelStable, a); !bytes.Equal(b, data) {
		t.Fatalf("read back %d bytes, not the %d published", len(b), n)
	}
	mid := int64(2*releases.ChunkSize + 77)
	start, b, err := s.ReleaseArchiveChunk(ctx, releases.ChannelStable, a.File, a.SHA256, mid, nil)
	must(t, err, "chunk in the middle")
	if start != 2*releases.ChunkSize || !bytes.Equal(b, data[start:start+releases.ChunkSize]) {
		t.Fatalf("the chunk holding byte %d starts at %d with %d bytes, want the one at %d", mid, start, len(b), 2*releases.ChunkSize)
	}
	_, _, err = s.ReleaseArchiveChunk(ctx, releases.ChannelStable, a.File, "0000", 0, nil)
	wantCode(t, err, apperr.CodeNotFound, "a chunk under another SHA-256")

	r, err := releases.OpenArchive(ctx, s, releases.ChannelStable, a.File)
	must(t, err, "open")
	if _, err := r.Seek(mid, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	must(t, err, "read from the middle")
	if !bytes.Equal(rest, data[mid:]) {
		t.Fatalf("read %d bytes from byte %d, want the archive's last %d", len(rest), mid, int64(n)-mid)
	}

	// A reader part way through, then the same bytes published again: it
	// reads on. Then other bytes under the same file name: it fails.
	r, err = releases.OpenArchive(ctx, s, releases.ChannelStable, a.File)
	must(t, err, "open")
	head := make([]byte, releases.ChunkSize+10)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatalf("read the start: %v", err)
	}
	must(t, s.PublishRelease(ctx, rel, map[string][]byte{a.File: data}), "publish the same again")
	if _, err := io.ReadFull(r, head[:releases.ChunkSize]); err != nil {
		t.Fatalf("read on after the same archive was published again: %v", err)
	}
	other, otherData := largeRelease(t, "v1.0.0", n)
	must(t, s.PublishRelease(ctx, other, map[string][]byte{a.File: otherData}), "publish other bytes")
	got, err := io.ReadAll(r)
	wantCode(t, err, apperr.CodeNotFound, "read on after other bytes were published under the name")
	if len(got) > releases.ChunkSize || !bytes.Equal(got, data[2*releases.ChunkSize+10:2*releases.ChunkSize+10+len(got)]) {
		t.Fatalf("after the publish the reader gave %d bytes that are not the rest of its chunk", len(got))
	}
	if b := readArchive(t, s, releases.ChannelStable, other.Archives[0]); !bytes.Equal(b, otherData) {
		t.Fatal("the archive published last does not read back")
	}
}

// testReleaseDownloadMemory: reading a 16 MiB archive holds about a chunk,
// not the archive. Half way through, after a collection, the live heap has
// grown by less than a quarter of the archive; reading it whole (as the
// store did before chunks) holds all of it then. Test and store run alone,
// so the live heap is deterministic enough, compared with the archive's
// size.
func testReleaseDownloadMemory(t *testing.T, s store.Store) {
	n := 64 * releases.ChunkSize
	rel, data := largeRelease(t, "v1.0.0", n)
	a := rel.Archives[0]
	must(t, s.PublishRelease(ctx, rel, map[string][]byte{a.File: data}), "publish")
	var before, mid runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := releases.OpenArchive(ctx, s, releases.ChannelStable, a.File)
	must(t, err, "open")
	h := sha256.New()
	buf := make([]byte, 32<<10)
	for read := 0; ; {
		k, err := r.Read(buf)
		h.Write(buf[:k])
		read += k
		if read >= n/2 && mid.NumGC == 0 {
			runtime.GC()
			runtime.ReadMemStats(&mid)
		}
		if err == io.EOF {
			break
		}
		must(t, err, "read")
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != a.SHA256 {
		t.Fatalf("read an archive of SHA-256 %s, want %s", got, a.SHA256)
	}
	grown := int64(mid.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("live heap half way through a %d-byte archive: %+d bytes", n, grown)
	if grown > int64(n/4) {
		t.Fatalf("half way through a %d-byte archive the live heap grew by %d bytes: the read holds more than a few chunks", n, grown)
	}
	runtime.KeepAlive(data)
}

// MigrateReleaseChunks fills db, migrated to 00042, with release archives
// as the store wrote them before migration 00043 (each whole in
// runner_release_archives.data: empty, smaller than a chunk, exactly one,
// a few and a bit), calls upTo43 and reads them through the store: the
// same bytes, in chunks of 262144 bytes. q adapts a query's ? placeholders
// to the database.
func MigrateReleaseChunks(t *testing.T, db *sql.DB, q func(string) string, upTo43 func() error) {
	exec := func(what, query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q(query), args...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	exec("release", `INSERT INTO runner_releases (channel, version, commit_sha, build_date, sums, signature, published_at, published_by)
		VALUES ('stable', 'v1.0.0', '', '', ?, ?, 1, 'admin')`, []byte("s"), []byte("g"))
	data := map[string][]byte{}
	for i, n := range []int{0, 5, 262144, 2*262144 + 3} {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		file := fmt.Sprintf("runyard_v1.0.0_linux_arch%d.tar.gz", i)
		data[file] = b
		exec("archive", `INSERT INTO runner_release_archives (channel, file, os, arch, sha256, size, data) VALUES ('stable', ?, 'linux', ?, ?, ?, ?)`,
			file, fmt.Sprintf("arch%d", i), hex.EncodeToString(sum[:]), n, b)
	}
	if err := upTo43(); err != nil {
		t.Fatalf("migrate to 00043: %v", err)
	}
	s := sqlstore.New(db, db, sqlstore.Dialect{Name: "migrated", Numbered: q("?") != "?", IsUniqueViolation: func(error) bool { return false }})
	rel, err := s.FindRelease(ctx, releases.ChannelStable)
	must(t, err, "find the migrated release")
	if len(rel.Archives) != len(data) {
		t.Fatalf("%d archives after the migration, want %d", len(rel.Archives), len(data))
	}
	for _, a := range rel.Archives {
		var chunks int
		for off := int64(0); off < a.Size; chunks++ {
			start, b, err := s.ReleaseArchiveChunk(ctx, releases.ChannelStable, a.File, a.SHA256, off, nil)
			must(t, err, "read a migrated chunk")
			if start != off || len(b) == 0 || len(b) > 262144 {
				t.Fatalf("%s: the chunk at %d starts at %d with %d bytes", a.File, off, start, len(b))
			}
			off += int64(len(b))
		}
		if want := (len(data[a.File]) + 262143) / 262144; chunks != want {
			t.Errorf("%s (%d bytes): %d chunks after the migration, want %d", a.File, a.Size, chunks, want)
		}
		r, err := releases.OpenArchive(ctx, s, releases.ChannelStable, a.File)
		must(t, err, "open a migrated archive")
		b, err := io.ReadAll(r)
		must(t, err, "read a migrated archive")
		if !bytes.Equal(b, data[a.File]) {
			t.Errorf("%s: read %d bytes after the migration, not the %d stored before", a.File, len(b), len(data[a.File]))
		}
	}
}
