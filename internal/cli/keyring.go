package cli

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/zalando/go-keyring"
)

// This file keeps a context's key in the OS keyring where one answers
// (macOS Keychain, Windows Credential Manager, the Secret Service of a
// Linux desktop: gnome-keyring, KWallet), and says so; elsewhere (a server,
// a container, CI) the key stays in the configuration file, mode 0600, and
// `auth status` says that too, and why.

// keyringService is the service name of runyard's keyring entries.
const keyringService = "runyard"

// tokenStoreKeyring marks a context whose key is in the keyring.
const tokenStoreKeyring = "keyring"

// keyringTimeout bounds one keyring call: a keyring that waits for a
// prompt nobody answers must not hang the CLI.
const keyringTimeout = 5 * time.Second

// keyringAccount names a context's entry: its name and its server, so a
// key is never read for another server.
func keyringAccount(c *cliContext) string {
	return c.Name + " " + normalizeServer(c.Server)
}

// keyringUnavailable says why no keyring is tried, "" when one may be.
// RUNYARD_KEYRING=off turns it off; on Linux without a session bus there is
// no Secret Service to ask (and nothing should start one).
func keyringUnavailable() string {
	if os.Getenv("RUNYARD_KEYRING") == "off" {
		return "RUNYARD_KEYRING=off"
	}
	if runtime.GOOS != "darwin" && runtime.GOOS != "windows" && os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		return "no D-Bus session bus, so no Secret Service (gnome-keyring, KWallet)"
	}
	return ""
}

// withKeyringTimeout runs fn, giving up after keyringTimeout.
func withKeyringTimeout(fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(keyringTimeout):
		return errors.New("the keyring did not answer within " + keyringTimeout.String())
	}
}

// storeContextKey moves c's key into the keyring when one answers (c then
// keeps no key and records where it is) and returns where the key is, for
// the user to read.
func storeContextKey(c *cliContext, path string) string {
	if c.Token == "" {
		return ""
	}
	why := keyringUnavailable()
	if why == "" {
		token := c.Token
		err := withKeyringTimeout(func() error { return keyring.Set(keyringService, keyringAccount(c), token) })
		if err == nil {
			c.Token, c.TokenStore = "", tokenStoreKeyring
			return "the OS keyring"
		}
		why = "the OS keyring refused: " + err.Error()
	}
	c.TokenStore = ""
	return fmt.Sprintf("%s (mode 0600; %s)", path, why)
}

// contextKey returns c's key, from the keyring when it is there.
func contextKey(c *cliContext) (string, error) {
	if c.TokenStore != tokenStoreKeyring {
		return c.Token, nil
	}
	var token string
	err := withKeyringTimeout(func() error {
		var err error
		token, err = keyring.Get(keyringService, keyringAccount(c))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("the key of context %q is in the OS keyring, which did not give it: %v; run `runyard login %s` again", c.Name, err, c.Server)
	}
	return token, nil
}

// deleteContextKey removes c's keyring entry, if it has one.
func deleteContextKey(c *cliContext) {
	if c.TokenStore != tokenStoreKeyring {
		return
	}
	_ = withKeyringTimeout(func() error { return keyring.Delete(keyringService, keyringAccount(c)) })
}

// hasKey reports whether c has a stored key, wherever it is.
func (c *cliContext) hasKey() bool { return c.Token != "" || c.TokenStore == tokenStoreKeyring }

// keyStoreOf says where c's key is kept, for `auth status`.
func keyStoreOf(c *cliContext, path string) string {
	if c.TokenStore == tokenStoreKeyring {
		return "the OS keyring"
	}
	why := keyringUnavailable()
	if why == "" {
		why = "stored before a keyring answered, or the keyring refused it"
	}
	return fmt.Sprintf("%s (mode 0600; no OS keyring: %s)", path, why)
}
