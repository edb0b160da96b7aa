package secrets_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	"github.com/runyard/runyard/internal/secrets"
)

// runnerKey generates a key pair the way the runner daemon does
// (internal/runner/state.go), so the tests prove the two fit together.
func runnerKey(tb testing.TB) *ecdh.PrivateKey {
	tb.Helper()
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestSeal_RoundTrip(t *testing.T) {
	k := runnerKey(t)
	pub, priv := k.PublicKey().Bytes(), k.Bytes()
	for _, value := range [][]byte{[]byte("s3cret"), {}, bytes.Repeat([]byte{0, 0xff}, secrets.MaxValueBytes/2)} {
		sealed, err := secrets.Seal(value, pub)
		if err != nil {
			t.Fatal(err)
		}
		if len(value) > 0 && bytes.Contains(sealed, value) {
			t.Fatal("the sealed value contains the plaintext")
		}
		got, err := secrets.Open(sealed, pub, priv)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, value) {
			t.Fatalf("Open = %d bytes, want %d", len(got), len(value))
		}
	}

	sealed, err := secrets.Seal([]byte("s3cret"), pub)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ErrOtherRunner", func(t *testing.T) {
		o := runnerKey(t)
		if _, err := secrets.Open(sealed, o.PublicKey().Bytes(), o.Bytes()); err == nil {
			t.Fatal("another runner opened the value")
		}
	})
	t.Run("ErrTampered", func(t *testing.T) {
		bad := append([]byte(nil), sealed...)
		bad[len(bad)-1] ^= 1
		if _, err := secrets.Open(bad, pub, priv); err == nil {
			t.Fatal("a tampered value opened")
		}
		if _, err := secrets.Open(sealed[:10], pub, priv); err == nil {
			t.Fatal("a truncated value opened")
		}
	})
	t.Run("ErrBadKeys", func(t *testing.T) {
		if _, err := secrets.Seal([]byte("x"), pub[:31]); err == nil {
			t.Fatal("Seal took a 31-byte key")
		}
		if _, err := secrets.Open(sealed, pub, priv[:16]); err == nil {
			t.Fatal("Open took a 16-byte private key")
		}
	})
}
