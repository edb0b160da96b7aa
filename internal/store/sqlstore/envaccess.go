package sqlstore

import (
	"context"
	"fmt"

	"github.com/runyard/runyard/internal/environments"
)

// FindEnvironmentOfAnyOrganization implements envaccess.Store.
func (db *DB) FindEnvironmentOfAnyOrganization(ctx context.Context, id string) (*environments.Environment, error) {
	e, err := scanEnvironment(db.readRow(ctx, `SELECT `+environmentColumns+` FROM environments WHERE id = ?`, id))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("environment %q", id))
	}
	return e, nil
}
