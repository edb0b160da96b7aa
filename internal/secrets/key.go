package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyEnv is the environment variable that holds the control plane's secrets
// key: the base64 of 32 random bytes. Replicas sharing one PostgreSQL
// database must all be given the same key this way.
const KeyEnv = "RUNYARD_SECRETS_KEY"

// KeyFile is the file in the data directory that holds the key when KeyEnv
// is not set. The first start creates it (mode 0600), in the same format as
// KeyEnv, so moving the key to the environment is a copy.
const KeyFile = "secrets.key"

// KeySize is the size of a key: AES-256.
const KeySize = 32

// Key encrypts secret values at rest with AES-256-GCM.
type Key struct {
	id   string
	aead cipher.AEAD
}

// NewKey returns the key with the 32 bytes raw.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("secrets key: %d bytes, want %d", len(raw), KeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	// The ID is a hash of the key, domain-separated so that it is no other
	// hash anyone computes of it; 8 bytes tell keys apart and reveal
	// nothing usable about a 32-byte random key.
	sum := sha256.Sum256(append([]byte("runyard secrets key id\x00"), raw...))
	return &Key{id: hex.EncodeToString(sum[:8]), aead: aead}, nil
}

// ParseKey decodes a key in the format of KeyEnv and KeyFile: standard
// base64 (padding optional) of 32 bytes, surrounding white space ignored.
func ParseKey(text string) (*Key, error) {
	text = strings.TrimSpace(text)
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(text)
	}
	if err != nil {
		return nil, errors.New("secrets key: not base64")
	}
	return NewKey(raw)
}

// GenerateKey returns a new random key in the format of KeyEnv.
func GenerateKey() (string, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate secrets key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// ID names the key without revealing it; stored with every ciphertext.
func (k *Key) ID() string { return k.id }

// LoadKey returns the control plane's key: from envValue (the value of
// KeyEnv) when it is set, otherwise from DATA_DIR/secrets.key, which it
// creates on first use. created reports a new file. A process racing on the
// first start reads the file the other one created: the file appears whole
// or not at all.
func LoadKey(envValue, dataDir string) (k *Key, created bool, err error) {
	if strings.TrimSpace(envValue) != "" {
		k, err := ParseKey(envValue)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", KeyEnv, err)
		}
		return k, false, nil
	}
	path := filepath.Join(dataDir, KeyFile)
	k, err = readKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	text, err := GenerateKey()
	if err != nil {
		return nil, false, err
	}
	// Write a temporary file and link it into place: a crash leaves no
	// half-written key, and a concurrent first start keeps the first link.
	tmp, err := os.CreateTemp(dataDir, KeyFile+".tmp-*")
	if err != nil {
		return nil, false, fmt.Errorf("create %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := tmp.WriteString(text + "\n"); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, false, fmt.Errorf("write %s: %w", path, err)
	}
	switch err := os.Link(tmp.Name(), path); {
	case errors.Is(err, fs.ErrExist):
		k, err := readKeyFile(path)
		return k, false, err
	case err != nil:
		return nil, false, fmt.Errorf("create %s: %w", path, err)
	}
	k, err = ParseKey(text)
	return k, err == nil, err
}

func readKeyFile(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s is corrupt: %w", path, err)
	}
	return k, nil
}

// additionalData binds a ciphertext to its secret: a ciphertext copied into
// another secret's row, or another organization's, fails to decrypt instead
// of yielding the wrong value.
func additionalData(orgID, secretID string) []byte {
	return []byte("runyard secret v1\x00" + orgID + "\x00" + secretID)
}

// encrypt encrypts the value of secret secretID of orgID.
func (k *Key) encrypt(orgID, secretID string, value []byte) (Ciphertext, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Ciphertext{}, fmt.Errorf("encrypt secret %q: %w", secretID, err)
	}
	return Ciphertext{
		KeyID: k.id,
		Nonce: nonce,
		Data:  k.aead.Seal(nil, nonce, value, additionalData(orgID, secretID)),
	}, nil
}

// decrypt returns the value of s. The caller should clear it after use.
func (k *Key) decrypt(s *Secret) ([]byte, error) {
	if s.Value.KeyID != k.id {
		return nil, fmt.Errorf("secret %q was encrypted with key %s, but the control plane's key is %s: was %s or %s changed?",
			s.ID, s.Value.KeyID, k.id, KeyEnv, KeyFile)
	}
	if len(s.Value.Nonce) != k.aead.NonceSize() {
		return nil, fmt.Errorf("secret %q: stored nonce has %d bytes, want %d", s.ID, len(s.Value.Nonce), k.aead.NonceSize())
	}
	v, err := k.aead.Open(nil, s.Value.Nonce, s.Value.Data, additionalData(s.OrgID, s.ID))
	if err != nil {
		return nil, fmt.Errorf("secret %q: stored value does not decrypt (corrupt, or moved from another secret)", s.ID)
	}
	return v, nil
}
