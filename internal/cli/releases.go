package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/buildinfo"
	"github.com/runyard/runyard/internal/release"
	"github.com/runyard/runyard/internal/releases"
)

func newReleasesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "releases",
		Short: "Publish and list the runner releases runners update themselves to",
		Example: `  runyard releases list
  runyard releases publish --channel stable dist/`,
	}
	cmd.AddCommand(newReleasesPublishCmd(g), newReleasesListCmd(g))
	return cmd
}

func newReleasesPublishCmd(g *globals) *cobra.Command {
	var channel, keyFile string
	cmd := &cobra.Command{
		Use:   "publish [DIR]",
		Short: "Publish a signed release directory to a channel (installation admin)",
		Long: `Publish a release directory as runyard-release builds it (archives, SHA256SUMS,
SHA256SUMS.sig, release.json) to a channel. The control plane checks the
signature against its --release-public-key and refuses a release it does not
verify. Runners with autoUpdate on that channel update to it in their update
window. Without DIR, this binary is published for its own platform, signed
with --key (or $RUNYARD_RELEASE_KEY / $RUNYARD_RELEASE_KEY_FILE).`,
		Example: `  runyard releases publish --channel stable dist/
  runyard releases publish --channel latest --key release-signing-key.pem`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := releases.ParseChannel("--channel", channel); err != nil {
				return err
			}
			dir := ""
			if len(args) == 1 {
				dir = args[0]
			} else {
				tmp, err := os.MkdirTemp("", "runyard-publish-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				if err := packageSelf(tmp, keyFile); err != nil {
					return err
				}
				dir = tmp
			}
			files, err := readReleaseDir(dir)
			if err != nil {
				return err
			}
			token, err := g.endpoint()
			if err != nil {
				return err
			}
			raw, err := publishRelease(cmd.Context(), g.httpClient(30*time.Minute), g.server, token, channel, files)
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printRawJSON(raw)
			}
			var a struct {
				Release releases.Release `json:"release"`
			}
			if err := json.Unmarshal(raw, &a); err != nil {
				return fmt.Errorf("decode answer: %w", err)
			}
			fmt.Fprintf(g.stdout, "Published %s to channel %s (%s).\n", a.Release.Version, a.Release.Channel, platforms(&a.Release))
			return nil
		},
	}
	cmd.Flags().StringVar(&channel, "channel", "", "the channel: stable or latest (required)")
	cmd.Flags().StringVar(&keyFile, "key", "", "without DIR: the release signing key (PKCS #8 PEM) to sign this binary with")
	_ = cmd.MarkFlagRequired("channel")
	return cmd
}

// packageSelf writes a release of this binary for its platform into dir.
func packageSelf(dir, keyFile string) error {
	var b []byte
	var err error
	switch {
	case keyFile != "":
		b, err = os.ReadFile(keyFile)
	case os.Getenv("RUNYARD_RELEASE_KEY") != "":
		b = []byte(os.Getenv("RUNYARD_RELEASE_KEY"))
	case os.Getenv("RUNYARD_RELEASE_KEY_FILE") != "":
		b, err = os.ReadFile(os.Getenv("RUNYARD_RELEASE_KEY_FILE"))
	default:
		return usagef("without DIR, this binary is signed and published: pass --key FILE (or set RUNYARD_RELEASE_KEY or RUNYARD_RELEASE_KEY_FILE)")
	}
	if err != nil {
		return fmt.Errorf("--key: %w", err)
	}
	key, err := release.ParsePrivateKey(b)
	if err != nil {
		return apperr.Invalid("--key", "%v", err)
	}
	info := buildinfo.Get()
	if info.Version == buildinfo.DevVersion {
		return usagef("this binary has no release version (it says %q): publish a directory built by runyard-release, or a binary built with scripts/release.sh", info.Version)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary: %w", err)
	}
	_, err = release.Package(dir, release.Manifest{Version: info.Version, Commit: info.Commit, Date: info.Date},
		map[release.Target]string{release.HostTarget(): exe}, key)
	return err
}

// readReleaseDir reads the regular files at the top of dir.
func readReleaseDir(dir string) (map[string][]byte, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, apperr.Invalid("DIR", "%v", err)
	}
	files := map[string][]byte{}
	var size int64
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		size += int64(len(b))
		if size > releases.MaxUploadBytes {
			return nil, apperr.Invalid("DIR", "%s holds more than %d bytes", dir, releases.MaxUploadBytes)
		}
		files[e.Name()] = b
	}
	if _, ok := files[release.SumsFile]; !ok {
		return nil, apperr.Invalid("DIR", "%s has no %s: give a directory built by runyard-release", dir, release.SumsFile)
	}
	return files, nil
}

// publishRelease posts files as multipart/form-data.
func publishRelease(ctx context.Context, hc *http.Client, server, token, channel string, files map[string][]byte) (json.RawMessage, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := mw.CreateFormFile("file", n)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(files[n]); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	u := strings.TrimRight(server, "/") + "/api/v1/releases/" + url.PathEscape(channel)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, &body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return doJSON(hc, req)
}

// doJSON sends req and returns the JSON of a 2xx answer; an error answer
// becomes the server's code and message (restError).
func doJSON(hc *http.Client, req *http.Request) (json.RawMessage, error) {
	res, err := hc.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return nil, req.Context().Err()
		}
		var ue *url.Error
		if ok := asURLError(err, &ue); ok {
			err = ue.Err
		}
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "cannot reach the control plane: " + err.Error()}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	if err != nil {
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "read the control plane's answer: " + err.Error()}
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 && json.Valid(b) {
		return b, nil
	}
	return nil, restError(res.StatusCode, b)
}

func asURLError(err error, target **url.Error) bool {
	ue, ok := err.(*url.Error)
	if ok {
		*target = ue
	}
	return ok
}

func newReleasesListCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the release each channel serves",
		Example: `  runyard releases list
  runyard releases list -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			token, err := g.endpoint()
			if err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, strings.TrimRight(g.server, "/")+"/api/v1/releases", nil)
			if err != nil {
				return err
			}
			req.Header.Set("Accept", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			raw, err := doJSON(g.httpClient(60*time.Second), req)
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printRawJSON(raw)
			}
			var a struct {
				Releases []releases.Release `json:"releases"`
			}
			if err := json.Unmarshal(raw, &a); err != nil {
				return fmt.Errorf("decode answer: %w", err)
			}
			// An empty list is its header alone, as every list prints.
			w := g.table()
			header := "CHANNEL\tVERSION\tPLATFORMS\tPUBLISHED"
			if g.wide() {
				header += "\tCOMMIT\tBUILD DATE\tPUBLISHED BY"
			}
			fmt.Fprintln(w, header)
			for _, r := range a.Releases {
				line := fmt.Sprintf("%s\t%s\t%s\t%s", r.Channel, r.Version, platforms(&r), r.PublishedAt.Format(time.RFC3339))
				if g.wide() {
					line += fmt.Sprintf("\t%s\t%s\t%s", dash(r.Commit), dash(r.BuildDate), dash(r.PublishedBy))
				}
				fmt.Fprintln(w, line)
			}
			return w.Flush()
		},
	}
	return cmd
}

func platforms(r *releases.Release) string {
	var p []string
	for _, a := range r.Archives {
		p = append(p, a.OS+"/"+a.Arch)
	}
	return strings.Join(p, ",")
}
