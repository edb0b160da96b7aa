package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/orgs"
)

const organizationColumns = `id, name, created_at, updated_at`

func scanOrganization(row interface{ Scan(...any) error }) (*identity.Organization, error) {
	var org identity.Organization
	var created, updated int64
	if err := row.Scan(&org.ID, &org.Name, &created, &updated); err != nil {
		return nil, err
	}
	org.CreatedAt = fromMicros(created)
	org.UpdatedAt = fromMicros(updated)
	return &org, nil
}

func (db *DB) FindOrganizationByID(ctx context.Context, id string) (*identity.Organization, error) {
	org, err := scanOrganization(db.read.QueryRowContext(ctx, db.q(`SELECT `+organizationColumns+` FROM organizations WHERE id = ?`), id))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("organization %s", id))
	}
	return org, nil
}

func (db *DB) FindOrganizations(ctx context.Context) ([]*identity.Organization, error) {
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT `+organizationColumns+` FROM organizations ORDER BY name`))
	if err != nil {
		return nil, db.translate(err, "organizations")
	}
	defer rows.Close()
	var out []*identity.Organization
	for rows.Next() {
		org, err := scanOrganization(rows)
		if err != nil {
			return nil, db.translate(err, "organizations")
		}
		out = append(out, org)
	}
	return out, db.translate(rows.Err(), "organizations")
}

func (db *DB) UpdateOrganization(ctx context.Context, id string, fn func(*identity.Organization) error) (*identity.Organization, error) {
	var org *identity.Organization
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		org, err = scanOrganization(tx.QueryRowContext(ctx, db.q(`SELECT `+organizationColumns+` FROM organizations WHERE id = ?`+db.dialect.LockRow), id))
		if err != nil {
			return db.translate(err, fmt.Sprintf("organization %s", id))
		}
		if err := fn(org); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`UPDATE organizations SET name = ?, updated_at = ? WHERE id = ?`),
			org.Name, micros(org.UpdatedAt), id)
		return db.translate(err, fmt.Sprintf("organization %q", org.Name))
	})
	if err != nil {
		return nil, err
	}
	return org, nil
}

// orgContents are the tables an organization's rows live in, in the order
// they are deleted (children before what they reference). Environments
// (and their automations, by cascade) and live runners are not among them:
// an organization that has any is not deleted.
var orgContents = []string{"prebuild_schedules", "prebuilds", "memberships", "exchange_tokens", "pods", "agent_types", "secrets", "tokens", "runners"}

func (db *DB) DeleteOrganization(ctx context.Context, id string, check func(orgs.Contents) error) error {
	// The organization's tombstones go with it.
	defer db.viewCleared()
	return db.tx(ctx, func(tx *sql.Tx) error {
		// The lock orders this delete with an insert that references the
		// organization (PostgreSQL's foreign key check takes a share lock on
		// it): a runner created meanwhile is either counted or refused.
		var got string
		if err := tx.QueryRowContext(ctx, db.q(`SELECT id FROM organizations WHERE id = ?`+db.dialect.LockRow), id).Scan(&got); err != nil {
			return db.translate(err, fmt.Sprintf("organization %s", id))
		}
		var n orgs.Contents
		if err := tx.QueryRowContext(ctx, db.q(`SELECT
			(SELECT COUNT(*) FROM runners WHERE org_id = ? AND deleted_at = 0),
			(SELECT COUNT(*) FROM environments WHERE org_id = ?)`), id, id).Scan(&n.Runners, &n.Environments); err != nil {
			return fmt.Errorf("count organization contents: %w", err)
		}
		if err := check(n); err != nil {
			return err
		}
		for _, table := range orgContents {
			if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM `+table+` WHERE org_id = ?`), id); err != nil {
				return fmt.Errorf("delete organization's %s: %w", table, err)
			}
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM organizations WHERE id = ?`), id); err != nil {
			return fmt.Errorf("delete organization: %w", err)
		}
		return nil
	})
}
