package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// Token prefixes say what a secret is when it shows up in a log or a paste, and
// let secret scanners find them.
const (
	PrefixAPIKey        = "ryd_ak_"
	PrefixRunnerToken   = "ryd_rt_"
	PrefixExchangeToken = "ryd_ex_"
)

// NewSecret returns a random token with prefix: 256 bits of entropy.
func NewSecret(prefix string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on supported platforms (it panics itself on
		// Go 1.24+); keep the explicit panic for clarity.
		panic("crypto/rand: " + err.Error())
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashSecret is the form in which a secret is stored and looked up.
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}
