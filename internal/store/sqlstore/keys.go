package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"time"
)

// serverKeySize is the size of every server key: 256 bits, the key size
// HMAC-SHA256 is built for.
const serverKeySize = 32

// ServerKey gets or creates the key called name. The insert does nothing when
// another caller (or replica) won the race, and the select then reads the
// winner's key, so every caller sees the same one. Both databases accept
// `INSERT ... ON CONFLICT (name) DO NOTHING`; on PostgreSQL the insert waits
// for a concurrent insert of the same name to commit before it decides.
func (db *DB) ServerKey(ctx context.Context, name string) ([]byte, error) {
	if name == "" {
		return nil, fmt.Errorf("server key: empty name")
	}
	fresh := make([]byte, serverKeySize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("server key %q: generate: %w", name, err)
	}
	var key []byte
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO server_keys (name, key, created_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO NOTHING`), name, fresh, micros(time.Now())); err != nil {
			return db.translate(err, fmt.Sprintf("server key %q", name))
		}
		err := tx.QueryRowContext(ctx, db.q(`SELECT key FROM server_keys WHERE name = ?`), name).Scan(&key)
		return db.translate(err, fmt.Sprintf("server key %q", name))
	})
	if err != nil {
		return nil, err
	}
	if len(key) != serverKeySize {
		return nil, fmt.Errorf("server key %q: stored key has %d bytes, want %d", name, len(key), serverKeySize)
	}
	return key, nil
}
