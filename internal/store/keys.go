package store

import "context"

// KeyStore keeps the control plane's own secrets in the database, so that
// every replica that shares the database also shares them.
type KeyStore interface {
	// ServerKey returns the 32-byte random key called name, creating it on
	// first use. Concurrent first calls, also from several replicas, all
	// return the same key. Its only errors are internal.
	ServerKey(ctx context.Context, name string) ([]byte, error)
}
