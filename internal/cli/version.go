package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/runyard/runyard/internal/buildinfo"
)

// versionReport is what `runyard version -o json` prints: this binary, and
// the control plane when it answered.
type versionReport struct {
	Client buildinfo.Info `json:"client"`
	Server *serverVersion `json:"server,omitempty"`
}

type serverVersion struct {
	URL string `json:"url"`
	*buildinfo.Info
	// Error says why the server's version is unknown.
	Error string `json:"error,omitempty"`
}

func newVersionCmd(g *globals) *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the version, commit, build date and Go version of this binary and of the server",
		Long: `Show the version, commit, build date, Go version and platform of this binary and,
unless --client, of the control plane (--server, RUNYARD_SERVER or the current
context's server), read from its GET /version, which needs no key. A server
that does not answer within 5 seconds is reported, not an error.`,
		Example: "  runyard version\n  runyard version --client\n  runyard version -o json --jq .server.version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			rep := versionReport{Client: buildinfo.Get()}
			if !clientOnly {
				rep.Server = g.serverVersion(cmd.Context())
			}
			if g.structured() {
				return g.printValue(rep)
			}
			printBuild(g.stdout, "Client", rep.Client)
			if s := rep.Server; s != nil {
				if s.Info == nil {
					fmt.Fprintf(g.stdout, "Server (%s): %s\n", s.URL, s.Error)
				} else {
					printBuild(g.stdout, "Server ("+s.URL+")", *s.Info)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "show this binary's version only, without asking the server")
	return cmd
}

func printBuild(w io.Writer, who string, b buildinfo.Info) {
	fmt.Fprintf(w, "%s: runyard %s\n  commit: %s\n  built: %s\n  go: %s\n  platform: %s\n", who, b.Version, b.Commit, b.Date, b.GoVersion, b.Platform)
}

// serverVersion asks the server for its build; failures are described in
// the answer, since the client's version is worth printing anyway.
func (g *globals) serverVersion(ctx context.Context) *serverVersion {
	if _, err := g.endpoint(); err != nil {
		return &serverVersion{URL: g.server, Error: "unknown: " + errorMessage(err)}
	}
	base := strings.TrimRight(g.ep.server, "/")
	sv := &serverVersion{URL: base}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/version", nil)
	if err != nil {
		sv.Error = "unreachable: " + err.Error()
		return sv
	}
	resp, err := g.httpClient(5 * time.Second).Do(req)
	if err != nil {
		sv.Error = "unreachable: " + err.Error()
		return sv
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		// A server older than GET /version answers 404.
		sv.Error = fmt.Sprintf("version unknown: GET /version answered %s", resp.Status)
		return sv
	}
	var info buildinfo.Info
	if err := json.Unmarshal(body, &info); err != nil || info.Version == "" {
		sv.Error = "version unknown: GET /version answered something else than a version"
		return sv
	}
	sv.Info = &info
	return sv
}
