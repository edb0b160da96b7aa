package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/internal/apperr"
)

// This file is the one resolver of the names people type for runyard's
// objects. A runner, environment, service, task, execution, pod, agent type,
// secret or token can be named by its full ID, by its name (a service's or
// task's reference), or by a unique prefix of its ID (at least
// minPrefix characters, as git abbreviates commits); a runner also by the
// numeric id of the REST API. The commands say which of their arguments and
// flags name what in one table (nameArgs, names.go); before a command runs,
// resolveNames rewrites those to the IDs the API takes, and the same table
// gives shell completion its candidates.
//
// The order is docker's: an exact ID wins, then an exact name, then an ID
// prefix. Several names or prefixes matching is an error listing the
// candidates (exit 2); none matching is not_found (exit 3).

// minPrefix is the shortest ID prefix that names an object: shorter ones
// match too much too easily for a command that deletes.
const minPrefix = 4

// candidate is one object a name may stand for.
type candidate struct {
	// id is what the API takes.
	id string
	// number is a runner's numeric REST id; empty when not known.
	number string
	// names are its name or reference; empty for objects without one.
	names []string
	// desc describes it beside its ID in a list of candidates and in
	// completions.
	desc string
}

// nameScope narrows a kind's candidates: the services and tasks of one
// environment, the pods and agent types of one organization (--org of the
// REST commands). numbers asks for the runners' numeric ids.
type nameScope struct {
	environment string
	org         string
	numbers     bool
}

// kind is one sort of object the resolver knows.
type kind struct {
	noun, plural string
	// idPrefix is the fixed start of every ID (pods' "pod-"): a prefix
	// counts its characters after it, and may leave it out.
	idPrefix string
	// fullID reports whether arg is a complete ID, used as it is without
	// asking the server (nil: never).
	fullID func(arg string) bool
	// list returns every candidate in scope.
	list func(ctx context.Context, g *globals, sc nameScope) ([]candidate, error)
}

func isUUID(s string) bool { return uuid.Validate(s) == nil && len(s) == 36 }

var podKeyRe = regexp.MustCompile(`^pod-[0-9a-z]{12}$`)

var (
	kindRunner = &kind{noun: "runner", plural: "runners", fullID: isUUID, list: listRunnerCandidates}
	// kindRunnerNumber is a runner for the REST API, which takes its
	// numeric id: a UUID has to be looked up too.
	kindRunnerNumber = &kind{noun: "runner", plural: "runners", list: listRunnerCandidates}
	kindEnvironment  = &kind{noun: "environment", plural: "environments", fullID: isUUID, list: listEnvironmentCandidates}
	kindService      = &kind{noun: "service", plural: "services", fullID: isUUID, list: listServiceCandidates}
	kindTask         = &kind{noun: "task", plural: "tasks", fullID: isUUID, list: listTaskCandidates}
	kindExecution    = &kind{noun: "execution", plural: "executions", fullID: isUUID, list: listExecutionCandidates}
	kindPod          = &kind{noun: "pod", plural: "pods", idPrefix: "pod-", fullID: podKeyRe.MatchString, list: listPodCandidates}
	kindAgent        = &kind{noun: "agent type", plural: "agent types", list: listAgentCandidates}
	kindSecret       = &kind{noun: "secret", plural: "secrets", fullID: isUUID, list: listSecretCandidates}
	kindToken        = &kind{noun: "token", plural: "tokens", fullID: isUUID, list: listTokenCandidates}
	// kindOwnKey is one of the calling user's own API keys (`keys`).
	kindOwnKey = &kind{noun: "key", plural: "keys", fullID: isUUID, list: listOwnKeyCandidates}
	// kindInvite is a pending invite of --org's organization, by ID: an
	// invite has no name.
	kindInvite = &kind{noun: "invite", plural: "invites", fullID: isUUID, list: listInviteCandidates}
	// kindSSHKey is one of the caller's own SSH keys, also named by its
	// fingerprint (SHA256:...).
	kindSSHKey = &kind{noun: "SSH key", plural: "SSH keys", fullID: isUUID, list: listSSHKeyCandidates}
)

// resolve returns the object arg names. what is how the error names the
// argument: a flag ("--runner") or empty for a positional argument.
func (g *globals) resolve(ctx context.Context, k *kind, sc nameScope, what, arg string) (*candidate, error) {
	arg = strings.TrimSpace(arg)
	if arg == "" {
		return nil, usagef("%sgive a %s's name or ID", flagPrefix(what), k.noun)
	}
	if k.fullID != nil && k.fullID(arg) {
		return &candidate{id: arg}, nil
	}
	if _, err := strconv.ParseInt(arg, 10, 64); err == nil {
		// Only a runner has a number; the join costs calls, so only a
		// number asks for it.
		sc.numbers = true
	}
	cands, err := k.list(ctx, g, sc)
	if err != nil {
		return nil, err
	}
	return matchName(k, sc, cands, what, arg)
}

func flagPrefix(what string) string {
	if what == "" {
		return ""
	}
	return what + ": "
}

// matchName picks arg's candidate: exact ID, exact name, then ID prefix.
func matchName(k *kind, sc nameScope, cands []candidate, what, arg string) (*candidate, error) {
	for i, c := range cands {
		if strings.EqualFold(c.id, arg) || (c.number != "" && c.number == arg) {
			return &cands[i], nil
		}
	}
	var named []*candidate
	for i, c := range cands {
		for _, n := range c.names {
			if n == arg {
				named = append(named, &cands[i])
				break
			}
		}
	}
	switch len(named) {
	case 1:
		return named[0], nil
	case 0:
	default:
		return nil, ambiguous(k, what, arg, "name", named)
	}
	short := strings.ToLower(strings.TrimPrefix(arg, k.idPrefix))
	var prefixed []*candidate
	if len(short) >= minPrefix {
		for i, c := range cands {
			if strings.HasPrefix(strings.TrimPrefix(strings.ToLower(c.id), k.idPrefix), short) {
				prefixed = append(prefixed, &cands[i])
			}
		}
	}
	switch len(prefixed) {
	case 1:
		return prefixed[0], nil
	case 0:
	default:
		return nil, ambiguous(k, what, arg, "ID prefix", prefixed)
	}
	where := ""
	if sc.environment != "" {
		where = " in environment " + sc.environment
	}
	hint := ""
	if len(short) < minPrefix && k.fullID != nil {
		hint = fmt.Sprintf("; an ID prefix needs at least %d characters", minPrefix)
	}
	return nil, apperr.NotFound("%s%s %q not found%s: no name, ID or ID prefix matches (see `runyard %s list`)%s",
		flagPrefix(what), k.noun, arg, where, listNoun(k), hint)
}

// listNoun is the command group that lists a kind.
func listNoun(k *kind) string {
	switch k {
	case kindAgent:
		return "agents"
	case kindSSHKey:
		return "ssh-keys"
	}
	return k.plural
}

// maxCandidates bounds the candidates an ambiguity error lists.
const maxCandidates = 10

func ambiguous(k *kind, what, arg, by string, cands []*candidate) error {
	var parts []string
	for i, c := range cands {
		if i == maxCandidates {
			parts = append(parts, fmt.Sprintf("and %d more", len(cands)-maxCandidates))
			break
		}
		s := c.id
		if c.desc != "" {
			s += " (" + c.desc + ")"
		}
		parts = append(parts, s)
	}
	return usagef("%s%s %q is ambiguous: it is the %s of %d %s: %s; give the full ID or more of it",
		flagPrefix(what), k.noun, arg, by, len(cands), k.plural, strings.Join(parts, ", "))
}

// pageAll calls page with each next-page token until one returns none.
func pageAll(page func(token string) (next string, err error)) error {
	token := ""
	for i := 0; ; i++ {
		next, err := page(token)
		if err != nil {
			return err
		}
		if next == "" || next == token {
			return nil
		}
		token = next
	}
}

func pageReq(token string) *gitpodv1.PaginationRequest {
	return &gitpodv1.PaginationRequest{Token: token, PageSize: 100}
}

// listRunnerCandidates lists the caller's runners; with sc.numbers, or
// when asked to (a numeric argument), joined by name with the REST API's
// runners for their numeric ids.
func listRunnerCandidates(ctx context.Context, g *globals, sc nameScope) ([]candidate, error) {
	c, err := g.clients()
	if err != nil {
		return nil, err
	}
	var out []candidate
	err = pageAll(func(token string) (string, error) {
		res, err := c.runners.ListRunners(ctx, connect.NewRequest(&gitpodv1.ListRunnersRequest{Pagination: pageReq(token)}))
		if err != nil {
			return "", err
		}
		for _, r := range res.Msg.GetRunners() {
			out = append(out, candidate{id: r.GetRunnerId(), names: []string{r.GetName()},
				desc: r.GetName() + ", " + enumShort("RUNNER_PHASE_", r.GetStatus().GetPhase().String())})
		}
		return res.Msg.GetPagination().GetNextToken(), nil
	})
	if err != nil {
		return nil, err
	}
	if !sc.numbers {
		return out, nil
	}
	numbers, err := g.runnerNumbers(ctx, sc.org)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].number = numbers[out[i].names[0]]
	}
	return out, nil
}

// restRunner is a runner as the REST API shows it: what its daemon
// reported, and its numeric id.
type restRunner struct {
	ID       int64    `json:"id"`
	Name     string   `json:"name"`
	Status   string   `json:"status"`
	OS       string   `json:"os"`
	Arch     string   `json:"arch"`
	Labels   []string `json:"labels"`
	PodCount int      `json:"pod_count"`
	MaxPods  int      `json:"max_pods"`
}

// restRunners maps the names of the runners of org (the caller's
// organization when empty) to the REST API's view of them.
func (g *globals) restRunners(ctx context.Context, org string) (map[string]restRunner, error) {
	if org == "" {
		var err error
		if org, err = g.ownOrgName(ctx); err != nil {
			return nil, err
		}
	}
	rc, err := g.restClient(org)
	if err != nil {
		return nil, err
	}
	raw, err := rc.do(ctx, http.MethodGet, "/runners", nil, nil)
	if err != nil {
		return nil, err
	}
	var res struct {
		Runners []restRunner `json:"runners"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("decode runners: %w", err)
	}
	out := make(map[string]restRunner, len(res.Runners))
	for _, r := range res.Runners {
		out[r.Name] = r
	}
	return out, nil
}

// runnerNumbers maps the names of the runners of org to their numeric REST
// ids.
func (g *globals) runnerNumbers(ctx context.Context, org string) (map[string]string, error) {
	rs, err := g.restRunners(ctx, org)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rs))
	for name, r := range rs {
		out[name] = strconv.FormatInt(r.ID, 10)
	}
	return out, nil
}

// ownOrgName is the name of the caller's organization, which the REST API
// has in its paths.
func (g *globals) ownOrgName(ctx context.Context) (string, error) {
	c, err := g.clients()
	if err != nil {
		return "", err
	}
	id, err := c.identity.GetAuthenticatedIdentity(ctx, connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
	if err != nil {
		return "", err
	}
	org, err := c.orgs.GetOrganization(ctx, connect.NewRequest(&gitpodv1.GetOrganizationRequest{OrganizationId: id.Msg.GetOrganizationId()}))
	if err != nil {
		return "", fmt.Errorf("find your organization's name: %w", err)
	}
	return org.Msg.GetOrganization().GetName(), nil
}

func listEnvironmentCandidates(ctx context.Context, g *globals, _ nameScope) ([]candidate, error) {
	c, err := g.envClients()
	if err != nil {
		return nil, err
	}
	var out []candidate
	err = pageAll(func(token string) (string, error) {
		res, err := c.envs.ListEnvironments(ctx, connect.NewRequest(&gitpodv1.ListEnvironmentsRequest{Pagination: pageReq(token)}))
		if err != nil {
			return "", err
		}
		for _, e := range res.Msg.GetEnvironments() {
			cand := candidate{id: e.GetId(), desc: envPhase(e.GetStatus().GetPhase())}
			if n := e.GetMetadata().GetName(); n != "" {
				cand.names = []string{n}
				cand.desc = n + ", " + cand.desc
			}
			out = append(out, cand)
		}
		return res.Msg.GetPagination().GetNextToken(), nil
	})
	return out, err
}

func envFilter(sc nameScope) []string {
	if sc.environment == "" {
		return nil
	}
	return []string{sc.environment}
}

func listServiceCandidates(ctx context.Context, g *globals, sc nameScope) ([]candidate, error) {
	c, err := g.envClients()
	if err != nil {
		return nil, err
	}
	svcs, err := listServices(ctx, c, &gitpodv1.ListServicesRequest_Filter{EnvironmentIds: envFilter(sc)})
	if err != nil {
		return nil, err
	}
	out := make([]candidate, 0, len(svcs))
	for _, s := range svcs {
		ref := s.GetMetadata().GetReference()
		out = append(out, candidate{id: s.GetId(), names: []string{ref},
			desc: ref + " in environment " + s.GetEnvironmentId()})
	}
	return out, nil
}

func listTaskCandidates(ctx context.Context, g *globals, sc nameScope) ([]candidate, error) {
	c, err := g.envClients()
	if err != nil {
		return nil, err
	}
	tasks, err := listTasks(ctx, c, &gitpodv1.ListTasksRequest_Filter{EnvironmentIds: envFilter(sc)})
	if err != nil {
		return nil, err
	}
	out := make([]candidate, 0, len(tasks))
	for _, t := range tasks {
		ref := t.GetMetadata().GetReference()
		out = append(out, candidate{id: t.GetId(), names: []string{ref},
			desc: ref + " in environment " + t.GetEnvironmentId()})
	}
	return out, nil
}

// listExecutionCandidates lists executions; they have no name, their
// task's reference describes them.
func listExecutionCandidates(ctx context.Context, g *globals, sc nameScope) ([]candidate, error) {
	c, err := g.envClients()
	if err != nil {
		return nil, err
	}
	var out []candidate
	var envs []string
	err = pageAll(func(token string) (string, error) {
		res, err := c.autos.ListTaskExecutions(ctx, connect.NewRequest(&gitpodv1.ListTaskExecutionsRequest{
			Filter: &gitpodv1.ListTaskExecutionsRequest_Filter{EnvironmentIds: envFilter(sc)}, Pagination: pageReq(token),
		}))
		if err != nil {
			return "", err
		}
		for _, x := range res.Msg.GetTaskExecutions() {
			out = append(out, candidate{id: x.GetId(), desc: x.GetMetadata().GetTaskId() + ", " + execPhase(x.GetStatus().GetPhase())})
			if e := x.GetMetadata().GetEnvironmentId(); !containsString(envs, e) {
				envs = append(envs, e)
			}
		}
		return res.Msg.GetPagination().GetNextToken(), nil
	})
	if err != nil {
		return nil, err
	}
	// Describe each by its task's reference where it can be read.
	if names, err := refNames(ctx, c, envs); err == nil {
		for i := range out {
			task, phase, _ := strings.Cut(out[i].desc, ", ")
			if n, ok := names[task]; ok {
				out[i].desc = n + ", " + phase
			}
		}
	}
	return out, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func restOrg(sc nameScope) string {
	if sc.org == "" {
		return "default"
	}
	return sc.org
}

func listPodCandidates(ctx context.Context, g *globals, sc nameScope) ([]candidate, error) {
	rc, err := g.restClient(restOrg(sc))
	if err != nil {
		return nil, err
	}
	var out []candidate
	seen := map[string]bool{}
	for offset := 0; offset < 1<<20; {
		q := url.Values{"limit": {strconv.Itoa(podsPageSize)}, "offset": {strconv.Itoa(offset)}}
		raw, err := rc.do(ctx, http.MethodGet, "/pods", q, nil)
		if err != nil {
			return nil, err
		}
		var page struct {
			Pods  []restPod `json:"pods"`
			Total int       `json:"total"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, fmt.Errorf("decode pods: %w", err)
		}
		for _, p := range page.Pods {
			if !seen[p.Key] {
				seen[p.Key] = true
				out = append(out, candidate{id: p.Key, desc: p.AgentTypeID + ", " + p.Status})
			}
		}
		offset += len(page.Pods)
		if len(page.Pods) == 0 || offset >= page.Total {
			break
		}
	}
	return out, nil
}

func listAgentCandidates(ctx context.Context, g *globals, sc nameScope) ([]candidate, error) {
	rc, err := g.restClient(restOrg(sc))
	if err != nil {
		return nil, err
	}
	raw, err := rc.do(ctx, http.MethodGet, "/agents", nil, nil)
	if err != nil {
		return nil, err
	}
	var res struct {
		Builtin []restAgent `json:"builtin_agents"`
		Custom  []restAgent `json:"custom_agents"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("decode agents: %w", err)
	}
	var out []candidate
	for _, a := range append(res.Builtin, res.Custom...) {
		out = append(out, candidate{id: a.ID, names: []string{a.Name}, desc: a.Name})
	}
	return out, nil
}

func listSecretCandidates(ctx context.Context, g *globals, _ nameScope) ([]candidate, error) {
	c, err := g.secretsClient()
	if err != nil {
		return nil, err
	}
	var out []candidate
	err = pageAll(func(token string) (string, error) {
		res, err := c.secrets.ListSecrets(ctx, connect.NewRequest(&gitpodv1.ListSecretsRequest{Pagination: pageReq(token)}))
		if err != nil {
			return "", err
		}
		for _, s := range res.Msg.GetSecrets() {
			out = append(out, candidate{id: s.GetId(), names: []string{s.GetName()}, desc: s.GetName() + ", " + secretScope(s.GetScope())})
		}
		return res.Msg.GetPagination().GetNextToken(), nil
	})
	return out, err
}

func listTokenCandidates(ctx context.Context, g *globals, _ nameScope) ([]candidate, error) {
	return tokenCandidates(ctx, g, false)
}

func listOwnKeyCandidates(ctx context.Context, g *globals, _ nameScope) ([]candidate, error) {
	return tokenCandidates(ctx, g, true)
}

func tokenCandidates(ctx context.Context, g *globals, own bool) ([]candidate, error) {
	c, err := g.clients()
	if err != nil {
		return nil, err
	}
	var out []candidate
	err = pageAll(func(token string) (string, error) {
		res, err := c.tokens.ListTokens(ctx, connect.NewRequest(&runyardv1.ListTokensRequest{Pagination: pageReq(token), Own: own}))
		if err != nil {
			return "", err
		}
		for _, t := range res.Msg.GetTokens() {
			out = append(out, candidate{id: t.GetTokenId(), names: []string{t.GetName()},
				desc: t.GetName() + ", " + enumShort("PRINCIPAL_", t.GetPrincipal().String())})
		}
		return res.Msg.GetPagination().GetNextToken(), nil
	})
	return out, err
}

func listSSHKeyCandidates(ctx context.Context, g *globals, _ nameScope) ([]candidate, error) {
	c, err := g.sshKeysClient()
	if err != nil {
		return nil, err
	}
	res, err := c.ListSSHKeys(ctx, connect.NewRequest(&runyardv1.ListSSHKeysRequest{}))
	if err != nil {
		return nil, err
	}
	var out []candidate
	for _, k := range res.Msg.GetSshKeys() {
		names := []string{k.GetFingerprint()}
		if k.GetName() != "" {
			names = append(names, k.GetName())
		}
		out = append(out, candidate{id: k.GetId(), names: names, desc: dash(k.GetName()) + ", " + k.GetFingerprint()})
	}
	return out, nil
}

func listInviteCandidates(ctx context.Context, g *globals, sc nameScope) ([]candidate, error) {
	c, err := g.clients()
	if err != nil {
		return nil, err
	}
	orgID := ""
	if sc.org != "" {
		if orgID, err = organizationID(ctx, c, sc.org); err != nil {
			return nil, err
		}
	}
	res, err := c.userAdmin.ListInvites(ctx, connect.NewRequest(&runyardv1.ListInvitesRequest{OrganizationId: orgID}))
	if err != nil {
		return nil, err
	}
	var out []candidate
	for _, inv := range res.Msg.GetInvites() {
		out = append(out, candidate{id: inv.GetId(), desc: inv.GetRole() + ", expires " + stamp(inv.GetExpiresAt())})
	}
	return out, nil
}

// flagValues returns a flag's values: a slice flag's elements, or the one
// value.
func flagValues(f *pflag.Flag) []string {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.GetSlice()
	}
	return []string{f.Value.String()}
}

// setFlagValues replaces a flag's values with the resolved ones.
func setFlagValues(f *pflag.Flag, vals []string) error {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.Replace(vals)
	}
	return f.Value.Set(vals[0])
}

// flagString is the value of a string flag of cmd, or the only value of a
// slice flag; "" when it has none (or several).
func flagString(cmd *cobra.Command, name string) string {
	f := cmd.Flags().Lookup(name)
	if f == nil {
		return ""
	}
	if vals := flagValues(f); len(vals) == 1 {
		return vals[0]
	}
	return ""
}
