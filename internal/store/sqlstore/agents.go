package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"github.com/runyard/runyard/internal/audit"

	"github.com/runyard/runyard/internal/pods"
)

const agentTypeColumns = `org_id, id, name, command, env, created_at`

func scanAgentType(row interface{ Scan(...any) error }) (*pods.AgentType, error) {
	var a pods.AgentType
	var command, env string
	var created int64
	if err := row.Scan(&a.OrgID, &a.ID, &a.Name, &command, &env, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(command), &a.Command); err != nil {
		return nil, fmt.Errorf("decode command of agent type %q: %w", a.ID, err)
	}
	if err := json.Unmarshal([]byte(env), &a.Env); err != nil {
		return nil, fmt.Errorf("decode env of agent type %q: %w", a.ID, err)
	}
	a.CreatedAt = fromMicros(created)
	return &a, nil
}

// agentTypeDocs encodes the JSON columns of a.
func agentTypeDocs(a *pods.AgentType) (command, env string, err error) {
	c, err := json.Marshal(a.Command)
	if err != nil {
		return "", "", fmt.Errorf("encode command: %w", err)
	}
	e, err := json.Marshal(a.Env)
	if err != nil {
		return "", "", fmt.Errorf("encode env: %w", err)
	}
	return string(c), string(e), nil
}

func (db *DB) CreateAgentType(ctx context.Context, a *pods.AgentType) error {
	audit.SetObject(ctx, audit.TypeAgentType, a.ID)
	command, env, err := agentTypeDocs(a)
	if err != nil {
		return err
	}
	// Each write of agent types is a transaction, so the call's audit
	// entry commits with it.
	err = db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO agent_types (`+agentTypeColumns+`) VALUES (?, ?, ?, ?, ?, ?)`),
			a.OrgID, a.ID, a.Name, command, env, micros(a.CreatedAt))
		return err
	})
	return db.translate(err, fmt.Sprintf("agent type %q", a.ID))
}

func (db *DB) FindAgentType(ctx context.Context, orgID, id string) (*pods.AgentType, error) {
	a, err := scanAgentType(db.readRow(ctx, `SELECT `+agentTypeColumns+` FROM agent_types WHERE org_id = ? AND id = ?`, orgID, id))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("agent type %q", id))
	}
	return a, nil
}

func (db *DB) FindAgentTypes(ctx context.Context, orgID string) ([]*pods.AgentType, error) {
	// Read on every desired state pushed to a runner.
	rows, err := db.readQuery(ctx, `SELECT `+agentTypeColumns+` FROM agent_types WHERE org_id = ? ORDER BY id`, orgID)
	if err != nil {
		return nil, db.translate(err, "agent types")
	}
	defer rows.Close()
	out := []*pods.AgentType{}
	for rows.Next() {
		a, err := scanAgentType(rows)
		if err != nil {
			return nil, db.translate(err, "agent types")
		}
		out = append(out, a)
	}
	return out, db.translate(rows.Err(), "agent types")
}

func (db *DB) UpdateAgentType(ctx context.Context, orgID, id string, fn func(*pods.AgentType) error) (*pods.AgentType, error) {
	var out *pods.AgentType
	err := db.tx(ctx, func(tx *sql.Tx) error {
		a, err := scanAgentType(tx.QueryRowContext(ctx,
			db.q(`SELECT `+agentTypeColumns+` FROM agent_types WHERE org_id = ? AND id = ?`+db.dialect.LockRow), orgID, id))
		if err != nil {
			return err
		}
		if err := fn(a); err != nil {
			return err
		}
		command, env, err := agentTypeDocs(a)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE agent_types SET name = ?, command = ?, env = ? WHERE org_id = ? AND id = ?`),
			a.Name, command, env, orgID, id); err != nil {
			return err
		}
		out = a
		return nil
	})
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("agent type %q", id))
	}
	return out, nil
}

func (db *DB) DeleteAgentType(ctx context.Context, orgID, id string) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM agent_types WHERE org_id = ? AND id = ?`), orgID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return sql.ErrNoRows
		}
		return nil
	})
	return db.translate(err, fmt.Sprintf("agent type %q", id))
}
