package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Ping connects to the database at url and disconnects, changing nothing:
// the server asks before it writes anything of its own (the data
// directory, the secrets key), so that a database it cannot reach leaves
// no trace.
func Ping(ctx context.Context, url string) error {
	cfg, err := pgxConfig(url)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	return conn.Close(ctx)
}
