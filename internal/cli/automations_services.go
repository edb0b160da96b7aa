package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/apperr"
)

// This file is `runyard services`: an environment's services, waiting for
// one to run or stop, and their logs.

func newServicesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "services",
		Aliases: []string{"service", "svc"},
		Short:   "List, start and stop an environment's services, and read their logs",
	}
	cmd.AddCommand(newServicesListCmd(g), newServicesStartCmd(g), newServicesStopCmd(g), newServicesLogsCmd(g))
	return cmd
}

func listServices(ctx context.Context, c *envClients, filter *gitpodv1.ListServicesRequest_Filter) ([]*gitpodv1.Service, error) {
	var all []*gitpodv1.Service
	token := ""
	for {
		res, err := c.autos.ListServices(ctx, connect.NewRequest(&gitpodv1.ListServicesRequest{
			Filter: filter, Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 100},
		}))
		if err != nil {
			return nil, err
		}
		all = append(all, res.Msg.GetServices()...)
		if token = res.Msg.GetPagination().GetNextToken(); token == "" {
			return all, nil
		}
	}
}

// resolveService reads the service id names (resolveNames has turned a
// reference or ID prefix into its ID).
func resolveService(ctx context.Context, c *envClients, id string) (*gitpodv1.Service, error) {
	res, err := c.autos.GetService(ctx, connect.NewRequest(&gitpodv1.GetServiceRequest{Id: id}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetService(), nil
}

func newServicesListCmd(g *globals) *cobra.Command {
	var envIDs, refs []string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List services with their phases",
		Example: `  runyard services list --environment $ENV_ID`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			all, err := listServices(cmd.Context(), c, &gitpodv1.ListServicesRequest_Filter{EnvironmentIds: envIDs, References: refs})
			if err != nil {
				return err
			}
			if g.structured() {
				items := make([]proto.Message, len(all))
				for i, s := range all {
					items[i] = s
				}
				return g.printJSONList("services", items)
			}
			w := g.table()
			oneEnv := len(envIDs) == 1
			header := "ID\tREFERENCE\tNAME\tPHASE\tDESIRED\tTRIGGERS\tFAILURE"
			if !oneEnv {
				header = "ID\tENVIRONMENT\tREFERENCE\tNAME\tPHASE\tDESIRED\tTRIGGERS\tFAILURE"
			}
			if g.wide() {
				header += "\tSESSION\tSTART COMMAND\tCREATED"
			}
			fmt.Fprintln(w, header)
			for _, s := range all {
				env := ""
				if !oneEnv {
					env = s.GetEnvironmentId() + "\t"
				}
				fmt.Fprintf(w, "%s\t%s%s\t%s\t%s\t%s\t%s\t%s", s.GetId(), env, s.GetMetadata().GetReference(), dash(s.GetMetadata().GetName()),
					servicePhase(s.GetStatus().GetPhase()), servicePhase(s.GetSpec().GetDesiredPhase()),
					triggerList(s.GetMetadata().GetTriggeredBy()), dash(oneLine(s.GetStatus().GetFailureMessage())))
				if g.wide() {
					fmt.Fprintf(w, "\t%s\t%s\t%s", dash(s.GetSpec().GetSession()), dash(oneLine(s.GetSpec().GetCommands().GetStart())),
						ago(s.GetMetadata().GetCreatedAt().AsTime()))
				}
				fmt.Fprintln(w)
			}
			w.Flush()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&envIDs, "environment", nil, "only the services of these environments (names, IDs or ID prefixes)")
	f.StringSliceVar(&refs, "reference", nil, "only services with these references")
	return cmd
}

// serviceArgs names a service: its ID, a unique ID prefix or its reference
// (unique, or in --environment).
const serviceArgs = "SERVICE"

func newServicesStartCmd(g *globals) *cobra.Command {
	return newServiceDesiredCmd(g, "start", "Start a service (a stopped or failed one in a new session)", true)
}

func newServicesStopCmd(g *globals) *cobra.Command {
	return newServiceDesiredCmd(g, "stop", "Stop a service: its stop command, or SIGTERM and SIGKILL after the grace period", false)
}

func newServiceDesiredCmd(g *globals, verb, short string, start bool) *cobra.Command {
	var envID string
	var w waitFlags
	cmd := &cobra.Command{
		Use:   verb + " " + serviceArgs,
		Short: short,
		Example: fmt.Sprintf(`  runyard services %[1]s $SERVICE_ID
  runyard services %[1]s --environment $ENV_ID web --wait`, verb),
		Args: exactArgs(serviceArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			svc, err := resolveService(ctx, c, args[0])
			if err != nil {
				return err
			}
			var res proto.Message
			if start {
				r, err := c.autos.StartService(ctx, connect.NewRequest(&gitpodv1.StartServiceRequest{Id: svc.GetId()}))
				if err != nil {
					return err
				}
				res = r.Msg
			} else {
				r, err := c.autos.StopService(ctx, connect.NewRequest(&gitpodv1.StopServiceRequest{Id: svc.GetId()}))
				if err != nil {
					return err
				}
				res = r.Msg
			}
			name := fmt.Sprintf("service %s (%s)", svc.GetMetadata().GetReference(), svc.GetId())
			if !w.wait {
				if g.structured() {
					return g.printJSON(res)
				}
				doing := "stopping"
				if start {
					doing = "starting"
				}
				fmt.Fprintf(g.stdout, "Service %s (%s) is %s.\n", svc.GetMetadata().GetReference(), svc.GetId(), doing)
				return nil
			}
			return g.waitService(ctx, c, svc.GetId(), name, start, w)
		},
	}
	cmd.Flags().StringVar(&envID, "environment", "", "the service's environment (name or ID): its reference need only be unique there")
	what := "the service is stopped"
	if start {
		what = "the service is running"
	}
	w.add(cmd, what)
	return cmd
}

// waitService waits until service id runs (start) or is stopped, printing
// its phases. A start counts the session the start asked for, so a failure
// of an earlier session is not mistaken for this one's.
func (g *globals) waitService(parent context.Context, c *envClients, id, name string, start bool, w waitFlags) error {
	ctx, cancel := w.context(parent)
	defer cancel()
	what := name + " is running"
	if !start {
		what = name + " is stopped"
	}
	begin := time.Now()
	last := gitpodv1.ServicePhase(-1)
	for {
		res, err := c.autos.GetService(ctx, connect.NewRequest(&gitpodv1.GetServiceRequest{Id: id}))
		if err != nil {
			if ctx.Err() != nil {
				return waitError(ctx, w.timeout, what, serviceKeeps(id, name, start))
			}
			return err
		}
		s := res.Msg.GetService()
		st := s.GetStatus()
		current := !start || st.GetSession() == s.GetSpec().GetSession()
		if p := st.GetPhase(); current && p != last {
			last = p
			if !g.structured() {
				fmt.Fprintf(g.stdout, "%8s  %s\n", elapsed(time.Since(begin)), servicePhase(p))
			}
		}
		done, failed := false, false
		if current {
			switch st.GetPhase() {
			case gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING:
				done = start
			case gitpodv1.ServicePhase_SERVICE_PHASE_FAILED:
				done, failed = true, true
			case gitpodv1.ServicePhase_SERVICE_PHASE_STOPPED:
				// A start that ends stopped: its command exited 0.
				done, failed = true, start
			case gitpodv1.ServicePhase_SERVICE_PHASE_UNSPECIFIED:
				// Never ran: as good as stopped.
				done = !start
			}
		}
		if done {
			if g.structured() {
				if err := g.printJSON(res.Msg); err != nil {
					return err
				}
			}
			if failed {
				msg := st.GetFailureMessage()
				if msg == "" {
					msg = "its start command exited"
				}
				return fmt.Errorf("%s %s: %s", name, servicePhase(st.GetPhase()), msg)
			}
			if !g.structured() {
				fmt.Fprintf(g.stdout, "Service %s is %s (%s).\n", s.GetMetadata().GetReference(), servicePhase(st.GetPhase()), elapsed(time.Since(begin)))
			}
			return nil
		}
		if msg := unreachableIn(st.GetFailureMessage()); msg != "" {
			if !g.structured() {
				fmt.Fprintf(g.stdout, "%8s  %s\n", elapsed(time.Since(begin)), msg)
			}
			return unreachableError(what, msg)
		}
		if !sleepCtx(ctx, pollInterval) {
			return waitError(ctx, w.timeout, what, serviceKeeps(id, name, start))
		}
	}
}

func newServicesLogsCmd(g *globals) *cobra.Command {
	var envID string
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs " + serviceArgs,
		Short: "Print the log of a service's current run",
		Long: `Print the log of a service's current (or last) run, from its runner. With -f,
go on printing as the service writes, until the run ends or Ctrl-C.`,
		Example: `  runyard services logs --environment $ENV_ID web -f`,
		Args:    exactArgs(serviceArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			svc, err := resolveService(ctx, c, args[0])
			if err != nil {
				return err
			}
			id := svc.GetId()
			logURL, err := waitLogURL(ctx, follow, func() (string, bool, error) {
				res, err := c.autos.GetService(ctx, connect.NewRequest(&gitpodv1.GetServiceRequest{Id: id}))
				if err != nil {
					return "", false, err
				}
				s := res.Msg.GetService()
				return s.GetStatus().GetLogUrl(), s.GetSpec().GetDesiredPhase() != gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING, nil
			})
			if err != nil {
				return err
			}
			if logURL == "" {
				return apperr.FailedPrecondition("service %s has no log yet: it has not run", svc.GetMetadata().GetReference())
			}
			return g.streamLog(ctx, c.token, logURL, follow)
		},
	}
	cmd.Flags().StringVar(&envID, "environment", "", "the service's environment (name or ID): its reference need only be unique there")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the run ends")
	return cmd
}

// waitLogURL returns the log URL fetch finds. With follow it waits for one
// while fetch says more may come (done false), so `logs -f` right after a
// start shows the run from its beginning.
func waitLogURL(ctx context.Context, follow bool, fetch func() (logURL string, done bool, err error)) (string, error) {
	for {
		u, done, err := fetch()
		if err != nil || u != "" || !follow || done {
			return u, err
		}
		if !sleepCtx(ctx, pollInterval) {
			return "", ctx.Err()
		}
	}
}

// streamLog copies a log URL (status.logUrl, on the control plane) to
// stdout; with follow it asks for ?follow=1 and copies until the run ends.
func (g *globals) streamLog(ctx context.Context, token, logURL string, follow bool) error {
	return g.streamLogTo(ctx, g.stdout, token, logURL, follow)
}

// streamLogTo is streamLog writing to w.
func (g *globals) streamLogTo(ctx context.Context, w io.Writer, token, logURL string, follow bool) error {
	u, err := url.Parse(logURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("the control plane gave an unusable log URL %q", logURL)
	}
	if follow {
		q := u.Query()
		q.Set("follow", "1")
		u.RawQuery = q.Encode()
	}
	if su, err := url.Parse(g.server); err == nil && !sameServer(u.Scheme+"://"+u.Host, g.server) && strings.Trim(su.Path, "/") == "" {
		u.Scheme, u.Host = su.Scheme, su.Host
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	// The API key goes only to the server it belongs to. A log URL on
	// another origin (the server's --public-url) names the same path on
	// every control plane, so it is read from the server the key is for.
	if token != "" && sameServer(u.Scheme+"://"+u.Host, g.server) {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// No overall timeout: a followed log lasts as long as the run.
	res, err := g.httpClient(0).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return unreachable(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, maxResponse))
		return restError(res.StatusCode, b)
	}
	if _, err := io.Copy(w, res.Body); err != nil && ctx.Err() == nil {
		return &apperr.Error{Code: apperr.CodeUnavailable, Message: "the log stream broke: " + err.Error()}
	}
	return nil
}

// serviceKeeps says what goes on after a wait for service id is
// interrupted, and how to stop it.
func serviceKeeps(id, name string, start bool) string {
	if start {
		return name + " keeps starting; stop it with `runyard services stop " + id + "`"
	}
	return name + " keeps stopping; see `runyard services list`"
}
