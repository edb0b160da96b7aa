package cli

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// This file is the CLI's configuration: the contexts `runyard login` and
// `runyard up` store, each a server with the one credential that belongs to
// it. The key itself is in the OS keyring where one answers (keyring.go),
// else in this file.

// cliConfig is $XDG_CONFIG_HOME/runyard/config.yaml.
type cliConfig struct {
	CurrentContext string       `json:"current-context,omitempty"`
	Contexts       []cliContext `json:"contexts"`
}

// cliContext is one server and its credential. Token is sent to Server and
// to no other URL.
type cliContext struct {
	Name     string `json:"name"`
	Server   string `json:"server"`
	Token    string `json:"token,omitempty"`
	CAFile   string `json:"ca-file,omitempty"`
	Insecure bool   `json:"insecure,omitempty"`
	// TokenStore is "keyring" when the key is in the OS keyring (Token is
	// empty then), empty when it is Token.
	TokenStore string `json:"token-store,omitempty"`
}

// configPath is where the configuration lives: $XDG_CONFIG_HOME/runyard, or
// ~/.config/runyard without it (on every OS, so that one path is documented).
func configPath() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the configuration directory: set XDG_CONFIG_HOME or HOME: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "runyard", "config.yaml"), nil
}

// loadConfig reads the configuration; a missing file is an empty one.
func loadConfig() (*cliConfig, string, error) {
	path, err := configPath()
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &cliConfig{}, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("read %s: %w", path, err)
	}
	var c cliConfig
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, path, fmt.Errorf("read %s: %w", path, err)
	}
	return &c, path, nil
}

// save writes the configuration atomically (a temporary file renamed over
// the old one) with mode 0600: it holds secrets, and a crash mid-write must
// not leave half a file that loses every context.
func (c *cliConfig) save(path string) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode configuration: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// find returns the context named name, or nil.
func (c *cliConfig) find(name string) *cliContext {
	for i := range c.Contexts {
		if c.Contexts[i].Name == name {
			return &c.Contexts[i]
		}
	}
	return nil
}

// forServer returns the first context of server, or nil.
func (c *cliConfig) forServer(server string) *cliContext {
	for i := range c.Contexts {
		if sameServer(c.Contexts[i].Server, server) {
			return &c.Contexts[i]
		}
	}
	return nil
}

// upsert adds ctx or replaces the context of the same name.
func (c *cliConfig) upsert(ctx cliContext) {
	if old := c.find(ctx.Name); old != nil {
		*old = ctx
		return
	}
	c.Contexts = append(c.Contexts, ctx)
}

// remove deletes the context named name, reporting whether there was one.
func (c *cliConfig) remove(name string) bool {
	for i := range c.Contexts {
		if c.Contexts[i].Name == name {
			c.Contexts = append(c.Contexts[:i], c.Contexts[i+1:]...)
			if c.CurrentContext == name {
				c.CurrentContext = ""
			}
			return true
		}
	}
	return false
}

// normalizeServer is the form servers are compared in: lower-case scheme and
// host, the scheme's default port made explicit, no trailing slash.
func normalizeServer(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" {
		return strings.TrimRight(strings.TrimSpace(s), "/")
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host + ":" + port + strings.TrimRight(u.EscapedPath(), "/")
}

// sameServer reports whether a and b name the same server. A credential is
// sent only when this holds between where it was stored for and where the
// request goes.
func sameServer(a, b string) bool { return normalizeServer(a) == normalizeServer(b) }
