package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/testutil"
)

func backends() []backend {
	return []backend{
		{name: "SQLite", databaseURL: func(*testing.T) string { return "" }},
		{name: "Postgres", databaseURL: func(t *testing.T) string { return testutil.PostgresURL(t) }},
	}
}

func TestServer_Bootstrap(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()

			t.Run("GeneratedKey", func(t *testing.T) {
				// The data dir is named like the default so that the CLI's
				// fallback to .runyard/admin-token can be tried from home.
				home := t.TempDir()
				cfg := serverConfig{DataDir: filepath.Join(home, ".runyard"), DatabaseURL: b.databaseURL(t)}
				s := startServer(t, cfg)

				keys := apiKeyRe.FindAllString(s.Stdout.String(), -1)
				if got, want := len(keys), 1; got != want {
					t.Fatalf("stdout shows %d admin keys, want %d:\n%s", got, want, s.Stdout)
				}
				key := keys[0]
				if strings.Contains(s.Stderr.String(), key) {
					t.Errorf("the server log on stderr contains the admin key")
				}
				tokenFile := filepath.Join(cfg.DataDir, "admin-token")
				fi, err := os.Stat(tokenFile)
				if err != nil {
					t.Fatalf("admin-token file: %v", err)
				}
				if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
					t.Errorf("admin-token mode = %v, want %v", got, want)
				}
				saved, err := os.ReadFile(tokenFile)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := strings.TrimSpace(string(saved)), key; got != want {
					t.Errorf("admin-token holds %q, want the printed key %q", got, want)
				}
				s.mustRun(t, key, "whoami")
				// Without --token the CLI uses .runyard/admin-token of its
				// working directory.
				if r := runCLI(t, home, nil, "--server", s.URL, "whoami"); r.Code != 0 {
					t.Errorf("whoami with the .runyard/admin-token fallback: exit code %d, stderr: %s", r.Code, r.Stderr)
				}
				id := adminKeyID(t, s, key)
				s.stop(t)

				s = startServer(t, cfg)
				if apiKeyRe.MatchString(s.Stdout.String()) {
					t.Errorf("restart printed a key:\n%s", s.Stdout)
				}
				if again, _ := os.ReadFile(tokenFile); string(again) != string(saved) {
					t.Errorf("restart changed admin-token from %q to %q", saved, again)
				}
				s.mustRun(t, key, "whoami")
				if got, want := adminKeyID(t, s, key), id; got != want {
					t.Errorf("admin key after restart = %s, want the first one %s", got, want)
				}
			})

			t.Run("FromEnv", func(t *testing.T) {
				// 16 characters: the shortest value the server accepts.
				first, second := "0123456789abcdef", "ryd_e2e_second_bootstrap_value"
				cfg := serverConfig{DataDir: t.TempDir(), DatabaseURL: b.databaseURL(t), Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + first}}
				s := startServer(t, cfg)
				if apiKeyRe.MatchString(s.Stdout.String()) || strings.Contains(s.Stdout.String()+s.Stderr.String(), first) {
					t.Errorf("the server printed a secret:\nstdout:\n%s\nstderr:\n%s", s.Stdout, s.Stderr)
				}
				if _, err := os.Stat(filepath.Join(cfg.DataDir, "admin-token")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("admin-token file: err = %v, want it not to exist", err)
				}
				s.mustRun(t, first, "whoami")
				id := adminKeyID(t, s, first)
				s.stop(t)

				cfg.Env = []string{"RUNYARD_BOOTSTRAP_TOKEN=" + second}
				s = startServer(t, cfg)
				if strings.Contains(s.Stdout.String()+s.Stderr.String(), second) {
					t.Errorf("the server printed the bootstrap value:\nstdout:\n%s\nstderr:\n%s", s.Stdout, s.Stderr)
				}
				s.mustRun(t, second, "whoami")
				requireOneLineError(t, s.run(t, first, "whoami"), 5, "invalid token")
				if got, want := adminKeyID(t, s, second), id; got != want {
					t.Errorf("admin key after rotation = %s, want the same key %s with a new value", got, want)
				}
			})

			t.Run("GeneratedThenEnv", func(t *testing.T) {
				home := t.TempDir()
				cfg := serverConfig{DataDir: filepath.Join(home, ".runyard"), DatabaseURL: b.databaseURL(t)}
				s := startServer(t, cfg)
				generated := apiKeyRe.FindString(s.Stdout.String())
				s.stop(t)

				cfg.Env = []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}
				s = startServer(t, cfg)
				s.mustRun(t, adminToken, "whoami")
				requireOneLineError(t, s.run(t, generated, "whoami"), 5)
				adminKeyID(t, s, adminToken)

				// admin-token must not keep a key that no longer works: the
				// CLI falls back to it.
				saved, err := os.ReadFile(filepath.Join(cfg.DataDir, "admin-token"))
				if errors.Is(err, os.ErrNotExist) {
					return
				}
				skipIfKnownBug(t, strings.TrimSpace(string(saved)) == generated,
					"after RUNYARD_BOOTSTRAP_TOKEN rotates the admin key, DATA_DIR/admin-token still holds the old generated key")
				if r := runCLI(t, home, nil, "--server", s.URL, "whoami"); r.Code != 0 {
					t.Errorf("whoami with the .runyard/admin-token fallback: exit code %d, stderr: %s", r.Code, r.Stderr)
				}
			})

			t.Run("ErrTokenTooShort", func(t *testing.T) {
				short := "0123456789abcde" // 15 characters
				code, s := runServerToExit(t, serverConfig{DatabaseURL: b.databaseURL(t), Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + short}})
				if code == 0 {
					t.Errorf("exit code = 0, want non-zero")
				}
				requireServerError(t, "server", s.Stderr.String(), "RUNYARD_BOOTSTRAP_TOKEN", "at least 16 characters")
				if strings.Contains(s.Stdout.String()+s.Stderr.String(), short) {
					t.Errorf("the server echoed the rejected value")
				}
			})

			if b.name == "Postgres" {
				t.Run("ConcurrentReplicas", func(t *testing.T) {
					// Two control planes bootstrap one fresh database at the
					// same moment: one admin key, shown once.
					url := b.databaseURL(t)
					servers := make([]*serverProc, 2)
					var wg sync.WaitGroup
					for i := range servers {
						servers[i] = spawnServer(t, serverConfig{DatabaseURL: url}, freePort(t))
					}
					errs := make([]error, len(servers))
					for i, s := range servers {
						wg.Go(func() { errs[i] = s.waitHealthy() })
					}
					wg.Wait()
					var keys []string
					for i, s := range servers {
						if errs[i] != nil {
							t.Fatalf("replica %d: %v", i, errs[i])
						}
						keys = append(keys, apiKeyRe.FindAllString(s.Stdout.String(), -1)...)
					}
					if got, want := len(keys), 1; got != want {
						t.Fatalf("replicas printed %d admin keys, want %d", got, want)
					}
					for _, s := range servers {
						s.mustRun(t, keys[0], "whoami")
					}
					adminKeyID(t, servers[0], keys[0])
				})
			}
		})
	}
}

func TestServer_Signals(t *testing.T) {
	for _, tc := range []struct {
		name string
		sig  os.Signal
	}{
		{"SIGTERM", syscall.SIGTERM},
		{"SIGINT", syscall.SIGINT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
			s.signal(t, tc.sig)
			if got, want := s.waitExit(t), 0; got != want {
				t.Errorf("exit code = %d, want %d", got, want)
			}
			if code, err := s.healthz(); err == nil {
				t.Errorf("/healthz still answers %d after the server exited", code)
			}
		})
	}

	t.Run("InFlightRequestCompletes", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
		conn, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(exitTimeout))

		// Expect: 100-continue makes the server say when the handler starts
		// reading the body: from then on the request is in flight, and it
		// stays so until the test sends the body.
		body := "{}"
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
			gitpodv1connect.IdentityServiceGetAuthenticatedIdentityProcedure, s.Addr, adminToken, len(body))
		br := bufio.NewReader(conn)
		status, err := br.ReadString('\n')
		if err != nil || !strings.Contains(status, " 100 ") {
			t.Fatalf("want 100 Continue, got %q, %v", status, err)
		}
		if blank, err := br.ReadString('\n'); err != nil || blank != "\r\n" {
			t.Fatalf("want the end of the 100 Continue response, got %q, %v", blank, err)
		}

		s.signal(t, syscall.SIGTERM)
		// Once /healthz fails, the shutdown has begun.
		deadline := time.Now().Add(exitTimeout)
		for {
			if code, err := s.healthz(); err != nil || code != http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("/healthz still answers 200 %v after SIGTERM", exitTimeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if s.exited() {
			t.Fatalf("the server exited with a request in flight")
		}

		if _, err := io.WriteString(conn, body); err != nil {
			t.Fatalf("send body: %v", err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(got), "organizationId") {
			t.Errorf("in-flight request: %s %s, want 200 with the identity", res.Status, got)
		}
		if got, want := s.waitExit(t), 0; got != want {
			t.Errorf("exit code = %d, want %d", got, want)
		}
	})
}

func TestServer_TLS(t *testing.T) {
	t.Parallel()
	cert := newTestCert(t)
	s := startServer(t, serverConfig{Cert: cert, Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})

	t.Run("Healthz", func(t *testing.T) {
		// startServer has already polled /healthz over https with a client
		// that trusts cert; check the plain-HTTP side too.
		if code, err := s.healthz(); err != nil || code != http.StatusOK {
			t.Fatalf("https /healthz: %d, %v", code, err)
		}
		res, err := http.Get("http://" + s.Addr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				t.Errorf("plain http /healthz on the TLS port answered 200")
			}
		}
	})

	t.Run("HTTP2", func(t *testing.T) {
		// gRPC clients need HTTP/2; over TLS that takes ALPN "h2".
		tr := &http.Transport{TLSClientConfig: cert.tlsConfig(), ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		res, err := (&http.Client{Transport: tr}).Get(s.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		skipIfKnownBug(t, res.Proto == "HTTP/1.1",
			"with --tls-cert the server negotiates only HTTP/1.1: internal/server/server.go wraps the listener with a TLS config whose NextProtos lacks \"h2\"")
		if got, want := res.Proto, "HTTP/2.0"; got != want {
			t.Errorf("protocol = %s, want %s", got, want)
		}
		grpcWhoami(t, &http.Client{Transport: tr}, s.URL)
	})

	t.Run("SecureSessionCookie", func(t *testing.T) {
		// Over TLS the console's session cookie is only ever sent back
		// over TLS.
		tr := &http.Transport{TLSClientConfig: cert.tlsConfig()}
		defer tr.CloseIdleConnections()
		res, err := (&http.Client{Transport: tr}).Post(s.URL+"/auth/key", "application/json", strings.NewReader(`{"key":"`+adminToken+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || len(res.Cookies()) != 1 {
			t.Fatalf("POST /auth/key: %d, cookies %v", res.StatusCode, res.Cookies())
		}
		if ck := res.Cookies()[0]; ck.Name != "runyard_session" || !ck.Secure || !ck.HttpOnly {
			t.Errorf("cookie %+v: want runyard_session, Secure, HttpOnly", ck)
		}
	})

	t.Run("CLIWithSSLCertFile", func(t *testing.T) {
		r := runCLI(t, "", []string{"SSL_CERT_FILE=" + cert.CertFile}, "--server", s.URL, "--token", adminToken, "whoami")
		if r.Code != 0 {
			t.Fatalf("whoami over https with SSL_CERT_FILE: exit code %d, stderr: %s", r.Code, r.Stderr)
		}
		if !strings.Contains(r.Stdout, "service-account") {
			t.Errorf("whoami: %q", r.Stdout)
		}
	})

	t.Run("ErrCLIUntrusted", func(t *testing.T) {
		r := runCLI(t, "", nil, "--server", s.URL, "--token", adminToken, "whoami")
		if r.Code == 0 {
			t.Fatalf("whoami against an untrusted certificate succeeded")
		}
		requireOneLine(t, "whoami", r.Stderr, "certificate")
	})
}

func (c *testCert) tlsConfig() *tls.Config { return &tls.Config{RootCAs: c.Pool} }

func TestServer_FlagErrors(t *testing.T) {
	t.Parallel()
	cert := newTestCert(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"ErrCertWithoutKey", []string{"--tls-cert", cert.CertFile}, []string{"--tls-cert and --tls-key"}},
		{"ErrKeyWithoutCert", []string{"--tls-key", cert.KeyFile}, []string{"--tls-cert and --tls-key"}},
		{"ErrCertMissing", []string{"--tls-cert", missing, "--tls-key", cert.KeyFile}, []string{"TLS", "missing.pem"}},
		{"ErrNotPostgresURL", []string{"--database", "mysql://x"}, []string{"--database", "postgres://"}},
		{"ErrPublicURLRelative", []string{"--public-url", "cp.example.com"}, []string{"--public-url", "absolute http or https URL"}},
		{"ErrAdvertiseURLScheme", []string{"--advertise-url", "ftp://10.0.0.5"}, []string{"--advertise-url", "absolute http or https URL"}},
		{"ErrRunnerStreams", []string{"--runner-streams", "udp"}, []string{"--runner-streams", `"udp"`, "auto, connection or http2"}},
		{"ErrRetentionZero", []string{"--deleted-runner-retention", "0s"}, []string{"--deleted-runner-retention", "positive"}},
		{"ErrLostAfterZero", []string{"--lost-after", "0s"}, []string{"--lost-after", "positive"}},
		{"ErrLostAfterBelowTimeout", []string{"--runner-timeout", "30s", "--lost-after", "10s"}, []string{"--lost-after (10s) must be at least --runner-timeout (30s)"}},
		{"ErrSessionIdleZero", []string{"--session-idle-timeout", "0s"}, []string{"--session-idle-timeout", "positive"}},
		{"ErrSessionMaxAgeNegative", []string{"--session-max-age", "-1h"}, []string{"--session-max-age", "positive"}},
		{"ErrSessionIdleOverMaxAge", []string{"--session-idle-timeout", "48h", "--session-max-age", "24h"}, []string{"--session-idle-timeout", "must not exceed --session-max-age"}},
		// The later --listen wins over the one spawnServer passes.
		{"ErrAddressInUse", []string{"--listen", busy.Addr().String()}, []string{"address already in use"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, s := runServerToExit(t, serverConfig{Args: tc.args, Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
			if code == 0 {
				t.Errorf("exit code = 0, want non-zero")
			}
			requireServerError(t, "server "+strings.Join(tc.args, " "), s.Stderr.String(), tc.want...)
		})
	}
}

func TestServer_H2C(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	res, err := hc.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatalf("h2c /healthz: %v", err)
	}
	res.Body.Close()
	if got, want := res.Proto, "HTTP/2.0"; got != want {
		t.Errorf("protocol = %s, want %s", got, want)
	}
	grpcWhoami(t, hc, s.URL)
}

// grpcWhoami calls GetAuthenticatedIdentity with the gRPC protocol, which
// needs HTTP/2.
func grpcWhoami(t *testing.T, hc *http.Client, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	c := gitpodv1connect.NewIdentityServiceClient(hc, url, connect.WithGRPC())
	req := connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{})
	req.Header().Set("Authorization", "Bearer "+adminToken)
	res, err := c.GetAuthenticatedIdentity(ctx, req)
	if err != nil {
		t.Fatalf("gRPC GetAuthenticatedIdentity: %v", err)
	}
	if res.Msg.GetOrganizationId() == "" {
		t.Errorf("gRPC GetAuthenticatedIdentity: empty organization ID")
	}
}
