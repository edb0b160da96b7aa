package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/store/postgres"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/store/sqlstore"
	"github.com/runyard/runyard/internal/users"
)

// population is an installation the size a team's would reach: many
// organizations, users with their memberships, and API keys, each key
// reading a runner of its own organization. It measures what
// authenticating and authorizing a request costs once keys no longer fit
// one small cache.
type population struct {
	keys []popKey
	// userKeys are keys owned by users (every second key): authenticating
	// one also reads its owner's state, and they are never cached.
	userKeys []popKey
}

type popKey struct {
	secret   string
	runnerID string
	user     bool
}

// seedPopulation writes the organizations, users and keys straight into
// the store (through the API the setup would take minutes), then creates
// one runner per organization through the API with one of its keys, so
// the request path under test is the real one.
func seedPopulation(ctx context.Context, cfg config, name, dir, databaseURL string, hc connect.HTTPClient, baseURL string) (*population, error) {
	start := time.Now()
	var st *sqlstore.DB
	var err error
	if databaseURL != "" {
		st, err = postgres.Open(ctx, databaseURL)
	} else {
		st, err = sqlite.Open(ctx, filepath.Join(dir, "runyard.db"))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: open the store to seed it: %w", name, err)
	}
	defer st.Close()

	now := time.Now()
	orgs := make([]*identity.Organization, cfg.orgs)
	for i := range orgs {
		orgs[i] = &identity.Organization{ID: uuid.NewString(), Name: fmt.Sprintf("bench-org-%03d", i), CreatedAt: now}
		if err := st.CreateOrganization(ctx, orgs[i]); err != nil {
			return nil, fmt.Errorf("%s: seed organization %d: %w", name, i, err)
		}
	}
	// Users are members of one organization each, round robin; they have
	// no password (hashing 10,000 with argon2id would be the setup's whole
	// time, and sign-in is not what this measures).
	userIDs := make([]string, cfg.users)
	if err := parallel(ctx, cfg.setup, cfg.users, func(i int) error {
		u := &users.User{ID: uuid.NewString(), Email: fmt.Sprintf("user%05d@bench.example", i), Name: fmt.Sprintf("User %d", i), CreatedAt: now, UpdatedAt: now}
		if err := st.CreateUser(ctx, u); err != nil {
			return fmt.Errorf("seed user %d: %w", i, err)
		}
		userIDs[i] = u.ID
		role := identity.RoleMember
		if i < cfg.orgs {
			role = identity.RoleAdmin
		}
		return st.CreateMembership(ctx, &users.Membership{OrgID: orgs[i%cfg.orgs].ID, UserID: u.ID, Role: role, CreatedAt: now})
	}); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	keys := make([]popKey, cfg.keys)
	orgOfKey := func(i int) int { return i % cfg.orgs }
	if err := parallel(ctx, cfg.setup, cfg.keys, func(i int) error {
		secret := identity.NewSecret(identity.PrefixAPIKey)
		id := uuid.NewString()
		scopes := []identity.Scope{identity.ScopeRunnersRead}
		if i < cfg.orgs {
			// The first key of each organization creates its runner.
			scopes = []identity.Scope{identity.ScopeRunnersRead, identity.ScopeRunnersWrite}
		}
		keys[i] = popKey{secret: secret}
		t := &identity.Token{
			ID: id, OrgID: orgs[orgOfKey(i)].ID, Name: fmt.Sprintf("bench-key-%05d", i),
			Principal: identity.PrincipalServiceAccount, Scopes: scopes,
			Creator: identity.Subject{ID: id, Principal: identity.PrincipalServiceAccount},
			Hash:    identity.HashSecret(secret), CreatedAt: now,
		}
		if u := i % max(cfg.users, 1); i >= cfg.orgs && i%2 == 1 && cfg.users >= cfg.orgs && u%cfg.orgs == orgOfKey(i) {
			// A user's own key, in the organization the user is a member of.
			t.Principal, t.OwnerUserID = identity.PrincipalUser, userIDs[u]
			t.Creator = identity.Subject{ID: userIDs[u], Principal: identity.PrincipalUser}
			keys[i].user = true
		}
		return st.CreateToken(ctx, t)
	}); err != nil {
		return nil, fmt.Errorf("%s: seed keys: %w", name, err)
	}
	runnerOf := make([]string, cfg.orgs)
	for o := range cfg.orgs {
		client := gitpodv1connect.NewRunnerServiceClient(hc, baseURL, connect.WithInterceptors(bearer(keys[o].secret)))
		res, err := client.CreateRunner(ctx, connect.NewRequest(&gitpodv1.CreateRunnerRequest{
			Name: "bench-runner", Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST,
		}))
		if err != nil {
			return nil, fmt.Errorf("%s: create the runner of organization %d: %w", name, o, err)
		}
		runnerOf[o] = res.Msg.GetRunner().GetRunnerId()
	}
	var userKeys []popKey
	for i := range keys {
		keys[i].runnerID = runnerOf[orgOfKey(i)]
		if keys[i].user {
			userKeys = append(userKeys, keys[i])
		}
	}
	fmt.Printf("%s population: %d organizations, %d users, %d keys (%d of them users') seeded in %s\n",
		name, cfg.orgs, cfg.users, cfg.keys, len(userKeys), time.Since(start).Round(time.Millisecond))
	return &population{keys: keys, userKeys: userKeys}, nil
}

// getWithKeys is GetRunner where every request carries a key drawn at
// random from the first n of the population (keys of every organization
// in turn). With n the whole population it is the worst case for any cache
// of authenticated keys; a smaller n is the set of keys in use at a time.
func (p *population) getWithKeys(keys []popKey, n int, hc connect.HTTPClient, baseURL string, opts []connect.ClientOption) func(context.Context) error {
	client := gitpodv1connect.NewRunnerServiceClient(hc, baseURL, opts...)
	n = min(n, len(keys))
	return func(ctx context.Context) error {
		k := keys[rand.IntN(n)]
		req := connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: k.runnerID})
		req.Header().Set("Authorization", "Bearer "+k.secret)
		res, err := client.GetRunner(ctx, req)
		if err != nil {
			return err
		}
		if got := res.Msg.GetRunner().GetRunnerId(); got != k.runnerID {
			return fmt.Errorf("GetRunner(%s) returned runner %q", k.runnerID, got)
		}
		return nil
	}
}

// getEach returns a function that reads the runner of keys[i] with that
// key, for parallel.
func (p *population) getEach(ctx context.Context, keys []popKey, hc connect.HTTPClient, baseURL string, opts []connect.ClientOption) func(i int) error {
	client := gitpodv1connect.NewRunnerServiceClient(hc, baseURL, opts...)
	return func(i int) error {
		k := keys[i]
		req := connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: k.runnerID})
		req.Header().Set("Authorization", "Bearer "+k.secret)
		_, err := client.GetRunner(ctx, req)
		return err
	}
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first
// error, after which the rest stop.
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	var next atomic.Int64
	var failed atomic.Bool
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil || failed.Load() {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}
