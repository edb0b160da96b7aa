package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestRead(t *testing.T) {
	vcs := func(main string, kv ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: main}}
			for i := 0; i+1 < len(kv); i += 2 {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
			}
			return bi, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	tests := []struct {
		name                 string
		version, commit, at  string
		build                func() (*debug.BuildInfo, bool)
		wantV, wantC, wantAt string
	}{
		{"Stamped", "v1.2.3", "abc", "2026-01-02T03:04:05Z", vcs("(devel)", "vcs.revision", "def"), "v1.2.3", "abc", "2026-01-02T03:04:05Z"},
		{"VCSFallback", "", "", "", vcs("(devel)", "vcs.revision", "def", "vcs.time", "2026-02-03T00:00:00Z", "vcs.modified", "true"), "dev", "def-dirty", "2026-02-03T00:00:00Z"},
		{"GoInstall", "", "", "", vcs("v1.4.0"), "v1.4.0", "unknown", "unknown"},
		{"Nothing", "", "", "", none, "dev", "unknown", "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := read(tt.version, tt.commit, tt.at, tt.build)
			if got.Version != tt.wantV || got.Commit != tt.wantC || got.Date != tt.wantAt {
				t.Fatalf("read = %+v, want version %q commit %q date %q", got, tt.wantV, tt.wantC, tt.wantAt)
			}
			if got.GoVersion == "" || got.Platform == "" {
				t.Fatalf("read = %+v: no Go version or platform", got)
			}
		})
	}
}

func TestImageTag(t *testing.T) {
	for in, want := range map[string]string{"dev": "latest", "": "latest", "v1.2.3": "v1.2.3", "v1.2.3+meta.1": "v1.2.3-meta.1"} {
		if got := ImageTag(in); got != want {
			t.Errorf("ImageTag(%q) = %q, want %q", in, got, want)
		}
	}
}
