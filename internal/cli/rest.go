package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/runyard/runyard/internal/apperr"
)

// This file is the CLI's client of the REST API (/api/v1/orgs/{org}/...),
// which serves pods and agent types; the Connect clients in client.go serve
// the rest. Its errors are *apperr.Error, so they exit with the codes of the
// one table in apperr like every other command.

// maxResponse bounds what the CLI reads of one REST answer.
const maxResponse = 16 << 20

// restClient calls the REST API of one organization.
type restClient struct {
	hc    *http.Client
	base  string // ends in /api/v1/orgs/{org}
	token string
	// noRaw is set once a port forward's upgrade was refused: the
	// forward's next connections use WebSockets at once.
	noRaw atomic.Bool
}

// restClient checks --server and org and returns a client with the same
// token as the Connect clients: --token, RUNYARD_TOKEN or .runyard's admin
// key (see clients).
func (g *globals) restClient(org string) (*restClient, error) {
	token, err := g.endpoint()
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(org) == "" {
		return nil, usagef("--org must not be empty")
	}
	return &restClient{
		hc:    g.httpClient(60 * time.Second),
		base:  strings.TrimRight(g.server, "/") + "/api/v1/orgs/" + url.PathEscape(org),
		token: token,
	}, nil
}

// do sends method path?query with body encoded as JSON (none when nil) and
// returns the raw JSON of a 2xx answer. An error answer becomes an
// *apperr.Error with the server's code and message; a server that cannot be
// reached, CodeUnavailable.
func (c *restClient) do(ctx context.Context, method, path string, query url.Values, body any) (json.RawMessage, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Say what failed without repeating the URL url.Error puts first.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "cannot reach the control plane: " + err.Error()}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	if err != nil {
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "read the control plane's answer: " + err.Error()}
	}
	if res.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		if !json.Valid(b) {
			return nil, fmt.Errorf("%s %s: the control plane answered HTTP %d without valid JSON", method, path, res.StatusCode)
		}
		return b, nil
	}
	err = restError(res.StatusCode, b)
	if ae := (*apperr.Error)(nil); errors.As(err, &ae) && ae.Code == apperr.CodeInvalid {
		ae.Message = mapFieldMessage(method+" "+path, ae.Message)
	}
	return nil, err
}

// restError converts an error answer. The API's body {"error","code"}
// becomes an *apperr.Error with that code, shown like a Connect error:
// "message (code)". Anything else (a proxy's page, an older server without
// the route) is reported with its HTTP status and exits 1.
func restError(status int, body []byte) error {
	var e struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if err := json.Unmarshal(body, &e); err == nil && e.Code != "" {
		msg := e.Error
		if msg == "" {
			msg = http.StatusText(status)
		}
		return &apperr.Error{Code: apperr.Code(e.Code), Message: msg + " (" + e.Code + ")"}
	}
	snippet := oneLine(string(body))
	if len(snippet) > 200 {
		snippet = snippet[:200] + "..."
	}
	if snippet == "" {
		return fmt.Errorf("the control plane answered HTTP %d %s", status, http.StatusText(status))
	}
	return fmt.Errorf("the control plane answered HTTP %d %s: %s", status, http.StatusText(status), snippet)
}

// parseEnv turns repeated --flag K=V values into a map, refusing a value
// without "=", an empty name and a name given twice.
func parseEnv(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	env := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			return nil, usagef("--%s %q: want NAME=VALUE", flag, kv)
		case k == "":
			return nil, usagef("--%s %q: the name before \"=\" is empty", flag, kv)
		}
		if _, dup := env[k]; dup {
			return nil, usagef("--%s: %s is given twice", flag, k)
		}
		env[k] = v
	}
	return env, nil
}
