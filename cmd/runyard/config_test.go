package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/testutil"
)

// writeConfig writes a `runyard server --config` file.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "runyard.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServer_ConfigFile: `runyard server --config FILE` takes the long flag
// names as keys, flags on the command line win over it, and a mistake in
// it (an unknown key, a bad value, missing single sign-on settings) stops
// the start with one line naming the key or flag, never showing the client
// secret.
func TestServer_ConfigFile(t *testing.T) {
	t.Parallel()
	const secret = "do-not-print-this-oidc-secret"
	t.Run("FlagsWin", func(t *testing.T) {
		t.Parallel()
		// The file's retention alone would refuse the start.
		cfg := writeConfig(t, "audit-retention: 0s\nlost-after: 10m\n")
		startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken},
			Args: []string{"--config", cfg, "--audit-retention", "1h"}})
	})
	refusals := []struct {
		name string
		yaml string
		args []string
		env  []string
		want []string
	}{
		{name: "FileValueApplies", yaml: "audit-retention: 0s\n", want: []string{"--audit-retention must be positive"}},
		{name: "UnknownKey", yaml: "listen: 127.0.0.1:0\noidc-isuer: https://id.example.com\n", want: []string{`unknown key "oidc-isuer"`, "line 2"}},
		{name: "NotAMapping", yaml: "- a\n- b\n", want: []string{"want a mapping"}},
		{name: "Nested", yaml: "oidc-scopes: {a: b}\n", want: []string{`key "oidc-scopes"`}},
		{name: "Twice", yaml: "oidc-client-id: a\noidc-client-id: b\n", want: []string{`"oidc-client-id" given twice`}},
		{name: "BadDuration", yaml: "lost-after: soon\n", want: []string{`key "lost-after"`}},
		{name: "MissingFile", args: []string{"--config", "/nonexistent/runyard.yaml"}, want: []string{"--config", "no such file"}},
		{name: "OIDCWithoutClientID", yaml: "oidc-issuer: https://id.example.com\noidc-client-secret: " + secret + "\n",
			want: []string{"--oidc-client-id: is required"}},
		{name: "OIDCWithoutSecret", yaml: "oidc-issuer: https://id.example.com\noidc-client-id: runyard\n",
			want: []string{"--oidc-client-secret: is required", "RUNYARD_OIDC_CLIENT_SECRET"}},
		{name: "OIDCBadIssuer", yaml: "oidc-issuer: ftp://id.example.com\noidc-client-id: runyard\n", env: []string{"RUNYARD_OIDC_CLIENT_SECRET=" + secret},
			want: []string{"--oidc-issuer", "http or https"}},
		{name: "OIDCBadRoleMap", yaml: "oidc-issuer: https://id.example.com\noidc-client-id: runyard\noidc-client-secret: " + secret + "\noidc-role-claim: groups\noidc-role-map: [admins=boss]\n",
			want: []string{"--oidc-role-map", `unknown role "boss"`}},
		{name: "OIDCRoleMapWithoutClaim", yaml: "oidc-issuer: https://id.example.com\noidc-client-id: runyard\noidc-client-secret: " + secret + "\noidc-role-map: admins=admin\n",
			want: []string{"--oidc-role-claim: is required with --oidc-role-map"}},
		{name: "OIDCBadDomain", args: []string{"--oidc-issuer", "https://id.example.com", "--oidc-client-id", "runyard", "--oidc-client-secret", secret, "--oidc-allowed-domains", "example.com,a@b.org"},
			want: []string{"--oidc-allowed-domains", `"a@b.org"`}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := tt.args
			if tt.yaml != "" {
				args = append([]string{"--config", writeConfig(t, tt.yaml)}, args...)
			}
			code, s := runServerToExit(t, serverConfig{Args: args, Env: append([]string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}, tt.env...)})
			if code == 0 {
				t.Fatalf("exit code 0, want a refusal")
			}
			requireServerError(t, "server --config", s.Stderr.String(), tt.want...)
			if strings.Contains(s.Stderr.String()+s.Stdout.String(), secret) {
				t.Errorf("the output shows the client secret:\n%s%s", s.Stdout, s.Stderr)
			}
		})
	}
}

// TestServer_SingleSignOnStarts: `runyard server` with single sign-on from
// a config file and the secret from RUNYARD_OIDC_CLIENT_SECRET discovers a
// real provider and says so; with the provider down it starts all the same,
// says single sign-on is unavailable, and its login answers 503. The client
// secret appears nowhere in its output.
func TestServer_SingleSignOnStarts(t *testing.T) {
	t.Parallel()
	const secret = "do-not-print-this-oidc-secret"
	op := testutil.StartOP(t, []testutil.OPClient{{ID: "runyard", Secret: secret}}, nil)
	for _, tt := range []struct {
		name, issuer, log string
		login             int
	}{
		{"ProviderUp", op.Issuer, "OpenID provider discovered", http.StatusFound},
		// Nothing listens on port 1 of loopback.
		{"ProviderDown", "http://127.0.0.1:1", "OpenID provider unreachable", http.StatusServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := writeConfig(t, "oidc-issuer: "+tt.issuer+"\noidc-client-id: runyard\noidc-allowed-domains: [example.com]\n")
			s := startServer(t, serverConfig{Args: []string{"--config", cfg},
				Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken, "RUNYARD_OIDC_CLIENT_SECRET=" + secret}})
			eventually(t, "the log says "+tt.log, func() bool { return strings.Contains(s.Stderr.String(), tt.log) })
			c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Get(s.URL + "/auth/oidc/login")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.login {
				t.Errorf("GET /auth/oidc/login: %d, want %d", resp.StatusCode, tt.login)
			}
			if strings.Contains(s.Stdout.String()+s.Stderr.String(), secret) {
				t.Errorf("the server's output shows the client secret")
			}
		})
	}
}
