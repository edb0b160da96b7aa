// Package buildinfo is the one place that knows which build this binary is:
// its version, commit and build date, stamped at link time by
// scripts/release.sh (go build -ldflags "-X ...buildinfo.version=v1.2.3
// -X ...buildinfo.commit=... -X ...buildinfo.date=..."). A binary built
// without them (go build, go run, go test) falls back on what the go command
// recorded in it: the module's version when installed with `go install
// module@version`, the VCS revision and time when built inside a git
// checkout (unless -buildvcs=false), else "dev".
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// Set with -ldflags -X; see the package comment. They are unexported so
// that nothing but the linker changes them.
var (
	version = ""
	commit  = ""
	date    = ""
)

// Info describes one build.
type Info struct {
	// Version is a release version ("v1.2.3") or "dev".
	Version string `json:"version"`
	// Commit is the git commit, "-dirty" appended when the tree had
	// changes; "unknown" when not recorded.
	Commit string `json:"commit"`
	// Date is the build (or, without a stamp, the commit) time in RFC 3339,
	// "unknown" when not recorded.
	Date string `json:"buildDate"`
	// GoVersion is the Go toolchain the binary was built with.
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// DevVersion is the version of a build nobody stamped.
const DevVersion = "dev"

var (
	once   sync.Once
	cached Info
)

// Get returns this binary's build.
func Get() Info {
	once.Do(func() { cached = read(version, commit, date, debug.ReadBuildInfo) })
	return cached
}

// Version is Get().Version.
func Version() string { return Get().Version }

// read merges the link-time stamps with the go command's records; a stamp
// wins over a record.
func read(version, commit, date string, readBuild func() (*debug.BuildInfo, bool)) Info {
	info := Info{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := readBuild(); ok {
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		var rev, at string
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if info.Commit == "" && rev != "" {
			info.Commit = rev
			if dirty {
				info.Commit += "-dirty"
			}
		}
		if info.Date == "" {
			info.Date = at
		}
	}
	if info.Version == "" {
		info.Version = DevVersion
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	if info.Date == "" {
		info.Date = "unknown"
	}
	return info
}

// ImageTag is the container image tag of this version: the version itself
// for a release, "latest" for a build nobody stamped (no image is published
// for it). Characters a tag may not hold ('+' of build metadata) become '-'.
func ImageTag(version string) string {
	if version == "" || version == DevVersion {
		return "latest"
	}
	var b strings.Builder
	for _, r := range version {
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '.' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

// LDFlags returns the -ldflags value that stamps version, commit and date
// into a build of this module, for scripts/release.sh and tests.
func LDFlags(version, commit, date string) string {
	const pkg = "github.com/runyard/runyard/internal/buildinfo"
	return "-X " + pkg + ".version=" + version + " -X " + pkg + ".commit=" + commit + " -X " + pkg + ".date=" + date
}
