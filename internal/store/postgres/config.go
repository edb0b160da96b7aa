package postgres

import (
	"fmt"

	"github.com/jackc/pgx/v5"
)

func pgxConfig(url string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's error may quote the URL with its password; say only what is
		// wrong.
		return nil, fmt.Errorf("parse postgres url: invalid connection string")
	}
	return cfg, nil
}
