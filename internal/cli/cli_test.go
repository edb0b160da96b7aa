package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSameServer(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/", true},
		{"HTTP://LocalHost:8080", "http://localhost:8080", true},
		{"https://runyard.example.com", "https://runyard.example.com:443", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8081", false},
		{"http://127.0.0.1:8080", "https://127.0.0.1:8080", false},
		{"http://127.0.0.1:8080", "http://localhost:8080", false},
		{"https://example.com/runyard", "https://example.com", false},
		{"https://evil.example.com", "https://example.com", false},
	} {
		if got := sameServer(tc.a, tc.b); got != tc.same {
			t.Errorf("sameServer(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

func TestMapFieldMessage(t *testing.T) {
	for _, tc := range []struct {
		method, msg, want string
	}{
		{"EnvironmentService/ListEnvironments", `filter.runnerIds[0]: must be a UUID, got "x"`, `--runner: must be a UUID, got "x"`},
		{"TokenService/CreateToken", `scopes: unknown scope "bogus"`, `--scopes: unknown scope "bogus"`},
		{"SecretService/CreateSecret", `scope.userId: must be a UUID`, `--user: must be a UUID`},
		{"TokenService/CreateToken", `no field here`, `no field here`},
		{"Unknown/Method", `name: too short`, `name: too short`},
		{"POST /pods", `agent_type_id: unknown agent`, `--agent: unknown agent`},
		{"EnvironmentService/CreateEnvironment", `spec.content.initializer.specs[0].contextUrl.url: must name a repository`, `--context-url: must name a repository`},
		{"EnvironmentService/CreateEnvironment", `spec.content.initializer.specs[0].git.remoteUri: is required`, `--git: is required`},
	} {
		if got := mapFieldMessage(tc.method, tc.msg); got != tc.want {
			t.Errorf("mapFieldMessage(%q, %q) = %q, want %q", tc.method, tc.msg, got, tc.want)
		}
	}
}

func TestFitWidths(t *testing.T) {
	widths := []int{36, 100, 10, 7}
	fitWidths(widths, 80)
	if widths[0] != 36 {
		t.Errorf("first column shortened to %d", widths[0])
	}
	if total := widths[0] + widths[1] + widths[2] + widths[3] + 6; total > 80 {
		t.Errorf("table of %d columns on 80: %v", total, widths)
	}
	// Nothing to shorten below the minimum: the table stays wider.
	narrow := []int{36, 8, 8}
	fitWidths(narrow, 20)
	if narrow[1] != 8 || narrow[2] != 8 {
		t.Errorf("columns shortened below 8: %v", narrow)
	}
}

func TestParseOutput(t *testing.T) {
	for _, ok := range []string{"table", "wide", "json", "yaml", "jsonpath={.a}", "go-template={{.a}}"} {
		if _, err := parseOutput(ok); err != nil {
			t.Errorf("parseOutput(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"xml", "jsonpath", "go-template=", "json=x", ""} {
		if _, err := parseOutput(bad); err == nil {
			t.Errorf("parseOutput(%q) accepted", bad)
		}
	}
}

func TestConfig_SaveIsPrivateAndAtomic(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	cfg, path, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.upsert(cliContext{Name: "a", Server: "http://127.0.0.1:1", Token: "k1"})
	cfg.upsert(cliContext{Name: "a", Server: "http://127.0.0.1:2", Token: "k2"})
	cfg.CurrentContext = "a"
	if err := cfg.save(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v, mode %v", err, fi.Mode())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".config-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	again, _, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Contexts) != 1 || again.Contexts[0].Token != "k2" || again.CurrentContext != "a" {
		t.Errorf("reloaded config = %+v", again)
	}
	if !again.remove("a") || again.CurrentContext != "" {
		t.Errorf("remove: %+v", again)
	}
	// A file the CLI did not write is refused with its path, not ignored.
	os.WriteFile(path, []byte("contexts: [{name: a, bogus: 1}]\n"), 0o600)
	if _, _, err := loadConfig(); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("config with an unknown field: err = %v", err)
	}
}
