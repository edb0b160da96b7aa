package storetest

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/releases"
	"github.com/runyard/runyard/internal/store"
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
	b, err := s.ReleaseArchive(ctx, releases.ChannelStable, v1.Archives[1].File)
	must(t, err, "archive")
	if !bytes.Equal(b, data1[v1.Archives[1].File]) {
		t.Fatalf("archive bytes = %v, want %v", b, data1[v1.Archives[1].File])
	}
	_, err = s.ReleaseArchive(ctx, releases.ChannelLatest, v1.Archives[1].File)
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
	_, err = s.ReleaseArchive(ctx, releases.ChannelStable, v1.Archives[1].File)
	wantCode(t, err, apperr.CodeNotFound, "the replaced release's archive")
	all, err = s.FindReleases(ctx)
	must(t, err, "list")
	if len(all) != 2 || all[0].Version != "v2.0.0" || all[1].Version != "v1.1.0" {
		t.Fatalf("FindReleases = %+v, want stable v2.0.0 then latest v1.1.0", all)
	}
}
