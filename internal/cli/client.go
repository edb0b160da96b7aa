package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/server"
)

// clients are the API clients of one command.
type clients struct {
	runners  gitpodv1connect.RunnerServiceClient
	identity gitpodv1connect.IdentityServiceClient
	tokens   runyardv1connect.TokenServiceClient
	orgs     gitpodv1connect.OrganizationServiceClient
	// installation is what only the installation admin may call.
	installation runyardv1connect.InstallationServiceClient
	users        gitpodv1connect.UserServiceClient
	userAdmin    runyardv1connect.UserAdminServiceClient
}

// endpoint checks --server and returns the token to use: --token, or the
// admin key that `runyard up` keeps in .runyard/admin-token, which makes the
// README's next step work without copying secrets around.
func (g *globals) endpoint() (token string, err error) {
	// Every client command gets here before its first call, so an -o it
	// cannot print is refused before anything changes.
	if err := g.checkOutput(); err != nil {
		return "", err
	}
	u, err := url.Parse(g.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usagef("--server must be an http:// or https:// URL, got %q", g.server)
	}
	token = g.token
	if token == "" {
		if b, err := os.ReadFile(filepath.Join(".runyard", server.AdminTokenFile)); err == nil {
			token = strings.TrimSpace(string(b))
		}
	}
	return token, nil
}

func (g *globals) clients() (*clients, error) {
	token, err := g.endpoint()
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 60 * time.Second}
	opts := []connect.ClientOption{connect.WithInterceptors(bearer(token))}
	base := strings.TrimRight(g.server, "/")
	return &clients{
		runners:      gitpodv1connect.NewRunnerServiceClient(hc, base, opts...),
		identity:     gitpodv1connect.NewIdentityServiceClient(hc, base, opts...),
		tokens:       runyardv1connect.NewTokenServiceClient(hc, base, opts...),
		orgs:         gitpodv1connect.NewOrganizationServiceClient(hc, base, opts...),
		installation: runyardv1connect.NewInstallationServiceClient(hc, base, opts...),
		users:        gitpodv1connect.NewUserServiceClient(hc, base, opts...),
		userAdmin:    runyardv1connect.NewUserAdminServiceClient(hc, base, opts...),
	}, nil
}

// bearer adds the Authorization header to every call.
func bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if token != "" {
				req.Header().Set("Authorization", "Bearer "+token)
			}
			return next(ctx, req)
		}
	}
}

// printJSON writes msg as the API's JSON, for -o json.
func (g *globals) printJSON(msg proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err = fmt.Fprintln(g.stdout, string(b))
	return err
}

// printJSONList writes items under key as one JSON object.
func (g *globals) printJSONList(key string, items []proto.Message) error {
	raw := make([]json.RawMessage, len(items))
	for i, m := range items {
		b, err := protojson.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		raw[i] = b
	}
	b, err := json.MarshalIndent(map[string]any{key: raw}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err = fmt.Fprintln(g.stdout, string(b))
	return err
}

func (g *globals) checkOutput() error {
	switch g.output {
	case "table", "json":
		return nil
	}
	return usagef("--output must be table or json, got %q", g.output)
}

// enumValue turns a short CLI name (linux-host) into the API's enum name
// (RUNNER_PROVIDER_LINUX_HOST), refusing names the enum lacks.
func enumValue(flag, prefix, short string, values map[string]int32) (int32, error) {
	name := prefix + strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(short), "-", "_"))
	if strings.HasPrefix(strings.ToUpper(short), prefix) {
		name = strings.ToUpper(short)
	}
	v, ok := values[name]
	if !ok || strings.HasSuffix(name, "_UNSPECIFIED") {
		return 0, usagef("--%s: unknown value %q (one of: %s)", flag, short, strings.Join(enumShortNames(prefix, values), ", "))
	}
	return v, nil
}

// enumShort is the CLI's name of an enum value: RUNNER_PROVIDER_LINUX_HOST →
// linux-host.
func enumShort(prefix, name string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, prefix), "_", "-"))
}

func enumShortNames(prefix string, values map[string]int32) []string {
	var out []string
	for i := int32(1); i < int32(len(values)); i++ {
		for name, v := range values {
			if v == i {
				out = append(out, enumShort(prefix, name))
			}
		}
	}
	return out
}
