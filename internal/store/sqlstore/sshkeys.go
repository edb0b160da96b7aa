package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/sshkeys"
)

var _ sshkeys.Store = (*DB)(nil)

const sshKeyColumns = `id, user_id, name, fingerprint, public_key, created_at`

func (db *DB) CreateSSHKey(ctx context.Context, k *sshkeys.Key) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		audit.SetObject(ctx, sshkeys.ObjectType, k.ID)
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO user_ssh_keys (`+sshKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?)`),
			k.ID, k.UserID, k.Name, k.Fingerprint, k.PublicKey, micros(k.CreatedAt))
		return db.translate(err, fmt.Sprintf("SSH key %s", k.Fingerprint))
	})
}

func (db *DB) FindSSHKeys(ctx context.Context, userID string) ([]*sshkeys.Key, error) {
	return db.findSSHKeys(ctx, `user_id = ?`, userID)
}

func (db *DB) FindSSHKeysByFingerprint(ctx context.Context, fingerprint string) ([]*sshkeys.Key, error) {
	return db.findSSHKeys(ctx, `fingerprint = ?`, fingerprint)
}

func (db *DB) findSSHKeys(ctx context.Context, where string, arg any) ([]*sshkeys.Key, error) {
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT `+sshKeyColumns+` FROM user_ssh_keys WHERE `+where+` ORDER BY created_at, id`), arg)
	if err != nil {
		return nil, db.translate(err, "SSH keys")
	}
	defer rows.Close()
	var out []*sshkeys.Key
	for rows.Next() {
		var k sshkeys.Key
		var created int64
		if err := rows.Scan(&k.ID, &k.UserID, &k.Name, &k.Fingerprint, &k.PublicKey, &created); err != nil {
			return nil, db.translate(err, "SSH keys")
		}
		k.CreatedAt = fromMicros(created)
		out = append(out, &k)
	}
	return out, db.translate(rows.Err(), "SSH keys")
}

func (db *DB) DeleteSSHKey(ctx context.Context, userID, id string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		audit.SetObject(ctx, sshkeys.ObjectType, id)
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM user_ssh_keys WHERE user_id = ? AND id = ?`), userID, id)
		return db.affectedOne(res, err, fmt.Sprintf("SSH key %s", id))
	})
}
