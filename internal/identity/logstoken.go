package identity

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/apperr"
)

// LogsTokenPrefix marks a logs token (EnvironmentService.CreateEnvironmentLogsToken).
const LogsTokenPrefix = "ryd_lt_"

// LogsTokenTTL is how long a logs token is valid, as the vendor documents.
const LogsTokenTTL = time.Hour

// logsTokenKeyName names the server key that signs logs tokens.
const logsTokenKeyName = "logs-token-hmac-v1"

// LogsGrant is what a logs token allows: reading the logs of one
// environment's services and task executions on its runner, nothing else.
type LogsGrant struct {
	EnvironmentID string
	RunnerID      string
}

// logsClaims is a logs token's signed payload. Logs tokens are not stored:
// the signature with the shared server key is the proof, so every replica
// accepts them and issuing one writes nothing.
type logsClaims struct {
	OrgID         string  `json:"o"`
	EnvironmentID string  `json:"e"`
	RunnerID      string  `json:"r"`
	Issuer        Subject `json:"s"`
	Expiry        int64   `json:"x"`
}

func (s *Service) logsKey(ctx context.Context) ([]byte, error) {
	k, err := s.serverKey(ctx, logsTokenKeyName)
	if err != nil {
		return nil, fmt.Errorf("logs-token key: %w", err)
	}
	return k, nil
}

func mac(key []byte, payload string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// IssueLogsToken returns a token, valid for LogsTokenTTL, that lets its
// bearer read the logs of environment envID (on runnerID) of the caller's
// organization. The domain service that knows the environment decides who
// may have one (environments.Service.CreateLogsToken).
func (s *Service) IssueLogsToken(ctx context.Context, c *Caller, envID, runnerID string) (string, time.Time, error) {
	key, err := s.logsKey(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := s.Now().Add(LogsTokenTTL).Truncate(time.Second)
	b, err := json.Marshal(logsClaims{OrgID: c.OrgID, EnvironmentID: envID, RunnerID: runnerID, Issuer: c.Subject, Expiry: exp.Unix()})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("logs token: %w", err)
	}
	payload := base64.RawURLEncoding.EncodeToString(b)
	return LogsTokenPrefix + payload + "." + mac(key, payload), exp, nil
}

// authenticateLogsToken checks a logs token's signature and expiry and
// returns its caller: principal ENVIRONMENT, no scopes, and the grant.
func (s *Service) authenticateLogsToken(ctx context.Context, secret string) (*Caller, error) {
	payload, sig, ok := strings.Cut(strings.TrimPrefix(secret, LogsTokenPrefix), ".")
	if !ok {
		return nil, apperr.Unauthenticated("invalid token")
	}
	key, err := s.logsKey(ctx)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal([]byte(sig), []byte(mac(key, payload))) {
		return nil, apperr.Unauthenticated("invalid token")
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, apperr.Unauthenticated("invalid token")
	}
	var cl logsClaims
	if err := json.Unmarshal(b, &cl); err != nil {
		return nil, apperr.Unauthenticated("invalid token")
	}
	if !s.Now().Before(time.Unix(cl.Expiry, 0)) {
		return nil, apperr.Unauthenticated("logs token has expired")
	}
	return &Caller{
		OrgID:   cl.OrgID,
		Subject: Subject{ID: cl.EnvironmentID, Principal: PrincipalEnvironment},
		Logs:    &LogsGrant{EnvironmentID: cl.EnvironmentID, RunnerID: cl.RunnerID},
	}, nil
}

// RequireLogs returns the caller if it may read logs on runnerID: a caller
// holding ScopeEnvironmentsRead, or a logs token of an environment on that
// runner (which log of the runner is the environment's is the
// environments service's to decide). It fails with CodeUnauthenticated and
// CodePermissionDenied.
func RequireLogs(ctx context.Context, runnerID string) (*Caller, error) {
	c, ok := FromContext(ctx)
	if ok && c.Logs != nil {
		if c.Logs.RunnerID != runnerID {
			return nil, apperr.PermissionDenied("this logs token is for the logs of environment %q only", c.Logs.EnvironmentID)
		}
		return c, nil
	}
	return Require(ctx, ScopeEnvironmentsRead)
}
