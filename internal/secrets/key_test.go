package secrets

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func mustKey(tb testing.TB) *Key {
	tb.Helper()
	text, err := GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	k, err := ParseKey(text)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestKey_EncryptDecrypt(t *testing.T) {
	k := mustKey(t)
	value := []byte("hunter2-\x00-binary-ok")
	c, err := k.encrypt("org", "id", value)
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyID != k.ID() || len(c.Nonce) != 12 {
		t.Fatalf("ciphertext: key %q nonce %d bytes", c.KeyID, len(c.Nonce))
	}
	if bytes.Contains(c.Data, value) {
		t.Fatal("the ciphertext contains the value")
	}
	sec := &Secret{ID: "id", OrgID: "org", Value: c}
	got, err := k.decrypt(sec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, value) {
		t.Fatalf("decrypt = %q, want %q", got, value)
	}

	t.Run("NonceFresh", func(t *testing.T) {
		c2, err := k.encrypt("org", "id", value)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(c.Nonce, c2.Nonce) || bytes.Equal(c.Data, c2.Data) {
			t.Fatal("two encryptions of one value share a nonce or a ciphertext")
		}
	})
	t.Run("ErrMovedToAnotherSecret", func(t *testing.T) {
		for _, moved := range []*Secret{{ID: "other", OrgID: "org", Value: c}, {ID: "id", OrgID: "other-org", Value: c}} {
			if _, err := k.decrypt(moved); err == nil {
				t.Fatalf("a ciphertext moved to %s/%s decrypted", moved.OrgID, moved.ID)
			}
		}
	})
	t.Run("ErrTampered", func(t *testing.T) {
		bad := *sec
		bad.Value.Data = append([]byte(nil), c.Data...)
		bad.Value.Data[0] ^= 1
		if _, err := k.decrypt(&bad); err == nil {
			t.Fatal("a tampered ciphertext decrypted")
		}
	})
	t.Run("ErrOtherKey", func(t *testing.T) {
		_, err := mustKey(t).decrypt(sec)
		if err == nil || !strings.Contains(err.Error(), KeyEnv) {
			t.Fatalf("decrypt with another key: %v, want an error naming %s", err, KeyEnv)
		}
	})
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{7}, 32)
	std := base64.StdEncoding.EncodeToString(raw)
	for _, text := range []string{std, " " + std + "\n", base64.RawStdEncoding.EncodeToString(raw)} {
		k, err := ParseKey(text)
		if err != nil {
			t.Fatalf("ParseKey(%q): %v", text, err)
		}
		if k2, _ := NewKey(raw); k.ID() != k2.ID() {
			t.Fatalf("ParseKey(%q) is another key", text)
		}
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(raw[:16])} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
		}
	}
	// The ID does not reveal the key.
	k, _ := NewKey(raw)
	if strings.Contains(k.ID(), "0707") {
		t.Fatalf("key ID %q looks like the key", k.ID())
	}
}

func TestLoadKey(t *testing.T) {
	t.Run("FileCreatedOnce", func(t *testing.T) {
		dir := t.TempDir()
		k1, created, err := LoadKey("", dir)
		if err != nil || !created {
			t.Fatalf("first LoadKey: created %v, %v", created, err)
		}
		fi, err := os.Stat(filepath.Join(dir, KeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", KeyFile, got)
		}
		k2, created, err := LoadKey("", dir)
		if err != nil || created || k2.ID() != k1.ID() {
			t.Fatalf("second LoadKey: key %s (first %s), created %v, %v", k2.ID(), k1.ID(), created, err)
		}
		// The file's content works as the environment variable.
		b, _ := os.ReadFile(filepath.Join(dir, KeyFile))
		k3, _, err := LoadKey(string(b), t.TempDir())
		if err != nil || k3.ID() != k1.ID() {
			t.Fatalf("the file's content as %s: %v", KeyEnv, err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Fatalf("data dir holds %d files, want only %s", len(entries), KeyFile)
		}
	})
	t.Run("ConcurrentFirstStarts", func(t *testing.T) {
		dir := t.TempDir()
		const n = 8
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k, _, err := LoadKey("", dir)
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = k.ID()
			}()
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("concurrent first starts got different keys: %v", ids)
			}
		}
	})
	t.Run("EnvWins", func(t *testing.T) {
		dir := t.TempDir()
		text, _ := GenerateKey()
		k, created, err := LoadKey(text, dir)
		if err != nil || created {
			t.Fatalf("LoadKey from env: created %v, %v", created, err)
		}
		want, _ := ParseKey(text)
		if k.ID() != want.ID() {
			t.Fatal("LoadKey did not use the environment's key")
		}
		if _, err := os.Stat(filepath.Join(dir, KeyFile)); !os.IsNotExist(err) {
			t.Fatalf("a key from the environment still wrote %s", KeyFile)
		}
	})
	t.Run("ErrBadEnv", func(t *testing.T) {
		_, _, err := LoadKey("c2hvcnQ=", t.TempDir())
		if err == nil || !strings.Contains(err.Error(), KeyEnv) {
			t.Fatalf("LoadKey with a short key: %v, want an error naming %s", err, KeyEnv)
		}
	})
	t.Run("ErrCorruptFile", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, KeyFile), []byte("garbage\n"), 0o600)
		_, _, err := LoadKey("", dir)
		if err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("LoadKey with a corrupt file: %v", err)
		}
	})
}
