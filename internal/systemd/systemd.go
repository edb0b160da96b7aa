// Package systemd renders the systemd unit that runs `runyard runner` as a
// service. It only renders and validates text: writing the file and telling
// the user what to run next is the CLI's job, and nothing here talks to
// systemd.
package systemd

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

// DefaultUnitName is the unit's name without the .service suffix.
const DefaultUnitName = "runyard-runner"

// DefaultUnitDir is where system units written by an administrator live.
const DefaultUnitDir = "/etc/systemd/system"

// RestartSec is how long systemd waits before it restarts a crashed runner.
// The daemon reconnects on its own while it runs; a restart happens only
// after a crash, a panic or a kill, so there is no backoff to coordinate
// with.
const RestartSec = "5s"

// RunnerUnit describes the service of one runner. The unit never holds a
// secret: the runner's credentials live in StateDir, and the one-time
// exchange token is spent before the unit runs.
type RunnerUnit struct {
	// Binary is the absolute path of the runyard binary.
	Binary string
	// StateDir is the runner's absolute state directory; the service may
	// write there and, with ProtectSystem=full, under /etc and /usr nowhere.
	StateDir string
	// Server is the control plane URL; empty lets the runner use the one its
	// state directory remembers.
	Server string
	// User runs the service; empty means root. The user must own StateDir.
	User string
	// Args are further flags of `runyard runner`, e.g. --labels gpu.
	Args []string
}

var (
	// userRe is a user name systemd accepts in User= (a numeric UID too).
	userRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}$|^[0-9]+$`)
	// unitNameRe is a unit name before its .service suffix; '@' is left out
	// because it would make a template unit.
	unitNameRe = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
)

// Validate reports what would make a broken or unsafe unit. Values with line
// breaks or other control characters are refused: written into a unit they
// would start new directives.
func (u RunnerUnit) Validate() error {
	if !filepath.IsAbs(u.Binary) {
		return fmt.Errorf("binary path %q is not absolute", u.Binary)
	}
	if !filepath.IsAbs(u.StateDir) {
		return fmt.Errorf("state dir %q is not absolute", u.StateDir)
	}
	if u.Server != "" {
		if p, err := url.Parse(u.Server); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("server must be an http:// or https:// URL, got %q", u.Server)
		}
	}
	if u.User != "" && !userRe.MatchString(u.User) {
		return fmt.Errorf("user %q is not a valid user name", u.User)
	}
	for _, v := range append([]string{u.Binary, u.StateDir, u.Server}, u.Args...) {
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return fmt.Errorf("%q contains a control character", v)
		}
	}
	return nil
}

// FileName returns the unit's file name for name, which may already end in
// .service.
func FileName(name string) (string, error) {
	base := strings.TrimSuffix(name, ".service")
	if base == "" || !unitNameRe.MatchString(base) || len(base)+len(".service") > 255 {
		return "", fmt.Errorf("unit name %q: use letters, digits and - _ . : only", name)
	}
	return base + ".service", nil
}

// Command is the service's command line: the binary, then `runner` and its
// flags.
func (u RunnerUnit) Command() []string {
	argv := []string{u.Binary, "runner", "--state-dir", u.StateDir}
	if u.Server != "" {
		argv = append(argv, "--server", u.Server)
	}
	return append(argv, u.Args...)
}

var unitTemplate = template.Must(template.New("unit").Parse(`# Written by "runyard runner install-service". The runner's credentials are in
# its state directory; this file holds no secret.
[Unit]
Description=runyard runner
Documentation=https://github.com/runyard/runyard
After=network-online.target
Wants=network-online.target

[Service]
# The daemon says READY=1 once it reached the control plane (or knows it has
# to keep trying), and STATUS= lines: connected or not, and its self-update.
# During an update the main PID moves to the update guard and back with
# MAINPID= (a rollback leaves the restored daemon under the guard's PID);
# every such message comes from the main process of the moment, so no other
# process of the unit (a service, an agent) is heard.
Type=notify
NotifyAccess=main
User={{.User}}
ExecStart={{.ExecStart}}
# The daemon reconnects to the control plane by itself; systemd restarts it
# only after a crash, a panic (exit 2, as a usage error, which the command
# line below does not make), a kill, or an exit 9 of the update guard (the
# runner it held the main PID for is gone).
Restart=on-failure
RestartSec={{.RestartSec}}
# These exits mean restarting cannot help: 1, the state directory is held by
# another process or holds no credentials; 5 and 6, the control plane refused
# the runner's credentials (token revoked, runner deleted while offline); 10,
# another process took over the runner's identity. A deleted runner exits 0,
# which on-failure does not restart either.
RestartPreventExitStatus=1 5 6 10
# Services and pods run under process holders that outlive the daemon, so
# that a restart or an upgrade kills no work: stopping the unit stops the
# daemon only (as docker.service and containerd.service do). The next daemon
# adopts them; "runyard environments stop" or deleting the runner ends them.
# While an update is on trial the main process is the guard: stopped, it
# stops the new binary and calls the update off.
KillMode=process
NoNewPrivileges=true
ProtectSystem=full
PrivateTmp=true
ReadWritePaths={{.StateDir}}

[Install]
WantedBy=multi-user.target
`))

// Render returns the unit file's text.
func (u RunnerUnit) Render() ([]byte, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	user := u.User
	if user == "" {
		user = "root"
	}
	words := make([]string, 0, len(u.Command()))
	for _, w := range u.Command() {
		words = append(words, QuoteExec(w))
	}
	var b bytes.Buffer
	err := unitTemplate.Execute(&b, map[string]string{
		"User":       user,
		"ExecStart":  strings.Join(words, " "),
		"RestartSec": RestartSec,
		"StateDir":   QuotePath(u.StateDir),
	})
	if err != nil {
		return nil, errors.New("render unit: " + err.Error())
	}
	return b.Bytes(), nil
}

// QuoteExec makes s one word of an ExecStart= command line: it escapes the
// specifier character % and the variable character $, and double-quotes a
// word that holds anything beyond a conservative set of characters.
func QuoteExec(s string) string {
	return quote(strings.ReplaceAll(s, "$", "$$"))
}

// QuotePath makes s one path of a space-separated path list such as
// ReadWritePaths=, where $ has no meaning but % does.
func QuotePath(s string) string { return quote(s) }

func quote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_-.,:=+@%$", r))
	}) {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
