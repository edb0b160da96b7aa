package main

import (
	"strings"
	"testing"
)

// TestCLI_TLSAndServer: --ca-file and --insecure-skip-verify on every
// command (Connect and REST alike) against a control plane speaking TLS on
// loopback, login storing them; a --server with a path is refused with the
// root it means; a command without a key says where keys come from.
func TestCLI_TLSAndServer(t *testing.T) {
	t.Parallel()
	cert := newTestCert(t)
	s := startServer(t, serverConfig{Cert: cert, Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
	fresh := []string{"XDG_CONFIG_HOME=" + t.TempDir()}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"ErrUnknownCA", []string{"runners", "list"}, 9, []string{"x509", "--ca-file FILE", "--insecure-skip-verify"}},
		{"ErrUnknownCARest", []string{"pods", "list"}, 9, []string{"x509", "--ca-file"}},
		{"CAFile", []string{"--ca-file", cert.CertFile, "runners", "list", "-o", "json"}, 0, []string{`"runners": []`}},
		{"CAFileRest", []string{"--ca-file", cert.CertFile, "pods", "list", "-o", "json"}, 0, []string{`"pods": []`}},
		{"Insecure", []string{"--insecure-skip-verify", "whoami", "-o", "json"}, 0, []string{`"organizationId"`}},
		{"ErrMissingCAFile", []string{"--ca-file", "/does/not/exist.pem", "whoami"}, 2, []string{"--ca-file", "/does/not/exist.pem"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, "", fresh, append([]string{"--server", s.URL, "--token", adminToken}, tc.args...)...)
			if tc.code != 0 {
				requireOneLineError(t, r, tc.code, tc.want...)
				return
			}
			if r.Code != 0 {
				t.Fatalf("runyard %s: exit %d, stderr %q", strings.Join(tc.args, " "), r.Code, r.Stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Stdout, w) {
					t.Errorf("runyard %s: %q, want %q in it", strings.Join(tc.args, " "), r.Stdout, w)
				}
			}
		})
	}

	t.Run("LoginStoresCAFile", func(t *testing.T) {
		cfg := []string{"XDG_CONFIG_HOME=" + t.TempDir()}
		requireOneLineError(t, runCLIInput(t, "", cfg, adminToken+"\n", "login", s.URL, "--with-token"), 9, "x509", "--ca-file")
		if r := runCLIInput(t, "", cfg, adminToken+"\n", "login", s.URL, "--with-token", "--ca-file", cert.CertFile); r.Code != 0 {
			t.Fatalf("login --ca-file: exit %d, %q", r.Code, r.Stderr)
		}
		if r := runCLI(t, "", cfg, "runners", "list"); r.Code != 0 {
			t.Fatalf("runners list with the stored CA file: exit %d, %q", r.Code, r.Stderr)
		}
	})

	t.Run("ErrServerWithPath", func(t *testing.T) {
		for _, path := range []string{"/api", "/console/runners", "/?x=1"} {
			r := runCLI(t, "", fresh, "--server", s.URL+path, "--token", adminToken, "whoami")
			requireOneLineError(t, r, 2, "--server must be the control plane's root URL, without a path", "did you mean "+s.URL+"?")
		}
		r := runCLIInput(t, "", fresh, adminToken+"\n", "login", s.URL+"/api", "--with-token")
		requireOneLineError(t, r, 2, "SERVER must be the control plane's root URL", "did you mean "+s.URL+"?")
		// A trailing slash is the root.
		if r := runCLI(t, "", fresh, "--server", s.URL+"/", "--token", adminToken, "--ca-file", cert.CertFile, "whoami"); r.Code != 0 {
			t.Errorf("--server with a trailing slash: exit %d, %q", r.Code, r.Stderr)
		}
	})

	t.Run("ErrNoKeySaysWhereKeysComeFrom", func(t *testing.T) {
		r := runCLI(t, "", fresh, "--server", s.URL, "--ca-file", cert.CertFile, "whoami")
		requireOneLineError(t, r, 5, "no API key for "+s.URL, "--token", "RUNYARD_TOKEN", "runyard login "+s.URL, ".runyard/admin-token", "runyard up")
	})
}
