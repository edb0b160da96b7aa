package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/server"
)

// defaultServer is the server of a command given none anywhere: where
// `runyard up` listens by default.
const defaultServer = "http://127.0.0.1:8080"

// localDataDir is the data directory whose admin key the CLI may use without
// being told: the one `runyard up` (or `runyard server`) uses by default in
// the working directory.
const localDataDir = ".runyard"

// adminTokenServerFile, next to the admin-token file, holds the URL of the
// server that last started from that data directory. The admin key is sent
// to that server only.
const adminTokenServerFile = "admin-token.server"

// resolved is where a client command sends its calls and with which key.
type resolved struct {
	server string
	token  string
	// source says where the token came from, for `auth status`.
	source string
	// context is the context whose server is used, if any: its TLS
	// settings apply.
	context *cliContext
	// fromContext is set when the token is the context's stored key.
	fromContext bool
	// hint says where a token for server would come from when none is
	// sent; it is added to an "unauthenticated" error.
	hint string
}

// resolveEndpoint picks the server (--server, RUNYARD_SERVER, --context or
// the current context, the server `runyard up` started here, the default)
// and the key: --token or RUNYARD_TOKEN as given, otherwise only a stored
// key that belongs to that very server — a context's key or
// ./.runyard/admin-token — so that naming another server never sends it a
// credential stored for a different one.
func (g *globals) resolveEndpoint() (*resolved, error) {
	cfg, path, err := loadConfig()
	if err != nil {
		return nil, err
	}
	var cur *cliContext
	switch {
	case g.contextName != "":
		if cur = cfg.find(g.contextName); cur == nil {
			return nil, usagef("--context: no context %q in %s (see `runyard context list`)", g.contextName, path)
		}
	case cfg.CurrentContext != "":
		cur = cfg.find(cfg.CurrentContext)
	}
	localToken, localServer := localAdminToken()

	r := &resolved{}
	switch {
	case g.serverSet:
		r.server = g.server
	case os.Getenv("RUNYARD_SERVER") != "":
		r.server = os.Getenv("RUNYARD_SERVER")
	case cur != nil:
		r.server = cur.Server
	case localServer != "":
		r.server = localServer
	default:
		r.server = defaultServer
	}
	if err := checkServerURL("--server", r.server); err != nil {
		return nil, err
	}
	if _, err := tlsConfig(g.caFile, g.insecure); err != nil {
		return nil, usagef("%v", err)
	}
	if cur != nil && sameServer(cur.Server, r.server) {
		r.context = cur
	} else if c := cfg.forServer(r.server); c != nil {
		r.context = c
	}

	switch {
	case g.tokenSet:
		r.token, r.source = g.token, "--token"
	case os.Getenv("RUNYARD_TOKEN") != "":
		r.token, r.source = os.Getenv("RUNYARD_TOKEN"), "RUNYARD_TOKEN"
	case r.context != nil && r.context.hasKey():
		token, err := contextKey(r.context)
		if err != nil {
			return nil, err
		}
		r.token, r.source, r.fromContext = token, fmt.Sprintf("context %q (%s)", r.context.Name, path), true
	case localToken != "" && localServer != "" && sameServer(localServer, r.server):
		r.token, r.source = localToken, filepath.Join(localDataDir, server.AdminTokenFile)
	default:
		r.hint = tokenHint(r.server, cur, localToken, localServer)
	}
	return r, nil
}

// tokenHint says why no key is sent to srv and how to get one.
func tokenHint(srv string, cur *cliContext, localToken, localServer string) string {
	login := fmt.Sprintf("run `runyard login %s`, pass --token or set RUNYARD_TOKEN", srv)
	switch {
	case cur != nil && cur.hasKey():
		return fmt.Sprintf("no API key is sent to %s: the key of context %q belongs to %s; to use %s, %s",
			srv, cur.Name, cur.Server, srv, login)
	case localToken != "" && localServer != "":
		return fmt.Sprintf("no API key is sent to %s: ./%s/%s belongs to %s, the server `runyard up` started here; to use %s, %s",
			srv, localDataDir, server.AdminTokenFile, localServer, srv, login)
	case localToken != "":
		return fmt.Sprintf("no API key is sent to %s: ./%s/%s has no record of the server it belongs to (restart `runyard up` here to record it); %s",
			srv, localDataDir, server.AdminTokenFile, login)
	}
	return fmt.Sprintf("no API key for %s: a key comes from --token, RUNYARD_TOKEN, the context `runyard login %s` stores, "+
		"or ./%s/%s in the directory where `runyard up` started that server; to get one, %s",
		srv, srv, localDataDir, server.AdminTokenFile, login)
}

// localAdminToken reads ./.runyard/admin-token and the URL of the server it
// belongs to; either is empty when missing.
func localAdminToken() (token, srv string) {
	b, err := os.ReadFile(filepath.Join(localDataDir, server.AdminTokenFile))
	if err != nil {
		return "", ""
	}
	token = strings.TrimSpace(string(b))
	if s, err := os.ReadFile(filepath.Join(localDataDir, adminTokenServerFile)); err == nil {
		srv = strings.TrimSpace(string(s))
	}
	return token, srv
}

// recordAdminTokenServer notes, next to dataDir's admin key, the server that
// key belongs to: the CLI sends it to that server only.
func recordAdminTokenServer(dataDir, srv string) error {
	path := filepath.Join(dataDir, adminTokenServerFile)
	if err := os.WriteFile(path, []byte(srv+"\n"), 0o600); err != nil {
		return fmt.Errorf("record the server of the admin key: %w", err)
	}
	return nil
}

// checkServerURL refuses a server that is not an http(s) URL of a host.
// The API lives at fixed paths below the root (/gitpod.v1..., /api/v1/...),
// so a URL with a path (an SDK's base URL ending in /api, a console page)
// is refused with the root it probably means.
func checkServerURL(flag, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("%s must be an http:// or https:// URL, got %q", flag, s)
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
		return usagef("%s must be the control plane's root URL, without a path: got %q; did you mean %s://%s?", flag, s, u.Scheme, u.Host)
	}
	return nil
}

// httpClient is the HTTP client of the command's calls: the TLS settings of
// the server's context apply (its CA file, or no verification when it was
// logged in to with --insecure-skip-verify).
func (g *globals) httpClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: g.transport()}
}

func (g *globals) transport() http.RoundTripper {
	caFile, insecure := g.caFile, g.insecure
	if g.ep != nil && g.ep.context != nil {
		if caFile == "" {
			caFile = g.ep.context.CAFile
		}
		insecure = insecure || g.ep.context.Insecure
	}
	tc, err := tlsConfig(caFile, insecure)
	if err != nil || tc == nil {
		// The CA file was readable at login; if it is gone now the
		// system roots apply and the handshake says what is wrong.
		return http.DefaultTransport
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return tr
}

// tlsConfig is the TLS configuration for a CA file and the insecure switch,
// nil when neither is set.
func tlsConfig(caFile string, insecure bool) (*tls.Config, error) {
	if caFile == "" && !insecure {
		return nil, nil
	}
	tc := &tls.Config{InsecureSkipVerify: insecure}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("--ca-file: no PEM certificate in " + caFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}
