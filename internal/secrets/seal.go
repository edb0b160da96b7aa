package secrets

import (
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/nacl/box"
)

// PublicKeySize is the size of a runner's X25519 public key
// (runners.Status.PublicKey, gitpod.v1 status.publicKey).
const PublicKeySize = 32

// Seal encrypts value to the X25519 public key of a runner with nacl box's
// anonymous construction: an ephemeral sender key per message, so only the
// holder of the runner's private key can open it and nobody, the control
// plane included, can later. The result is 48 bytes longer than value.
func Seal(value, runnerPublicKey []byte) ([]byte, error) {
	if len(runnerPublicKey) != PublicKeySize {
		return nil, fmt.Errorf("seal secret: runner public key has %d bytes, want %d", len(runnerPublicKey), PublicKeySize)
	}
	var pub [PublicKeySize]byte
	copy(pub[:], runnerPublicKey)
	out, err := box.SealAnonymous(nil, value, &pub, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("seal secret: %w", err)
	}
	return out, nil
}

// Open decrypts what Seal sealed to publicKey, with the runner's key pair:
// the raw 32-byte X25519 keys, as crypto/ecdh's PublicKey.Bytes and
// PrivateKey.Bytes return them. It fails for a value sealed to another key
// or changed on the way.
func Open(sealed, publicKey, privateKey []byte) ([]byte, error) {
	if len(publicKey) != PublicKeySize || len(privateKey) != PublicKeySize {
		return nil, fmt.Errorf("open secret: keys have %d and %d bytes, want %d", len(publicKey), len(privateKey), PublicKeySize)
	}
	var pub, priv [PublicKeySize]byte
	copy(pub[:], publicKey)
	copy(priv[:], privateKey)
	defer clear(priv[:])
	out, ok := box.OpenAnonymous(nil, sealed, &pub, &priv)
	if !ok {
		return nil, errors.New("open secret: not sealed to this runner's key, or damaged")
	}
	return out, nil
}
