// Package contexturl turns a context URL (what a user copies from a forge's
// web page: a repository, a branch, a commit, a pull request) into what a
// git initializer clones. It knows the URL shapes of GitHub, GitLab,
// Bitbucket and Gitea/Forgejo by their path markers, not by their host
// names, so self-hosted instances parse too. It never contacts a forge:
// what a URL names is decided from the URL alone.
//
// Rules, for https://HOST/PATH (and http://):
//
//	OWNER/REPO                          the default branch
//	.../REPO/tree/BRANCH                BRANCH is the rest of the path (branch names contain "/")
//	.../REPO/blob/BRANCH/FILE           BRANCH is the first segment (a file path follows)
//	.../REPO/commit/SHA                 the commit
//	.../REPO/commits/BRANCH             as tree
//	.../REPO/pull/N, .../pulls/N        ref refs/pull/N/head (GitHub, Gitea)
//	.../REPO/releases/tag/TAG           the tag
//	GROUP/.../REPO/-/tree/BRANCH        GitLab: nested groups before "-"; also -/blob, -/commit
//	GROUP/.../REPO/-/merge_requests/N   ref refs/merge-requests/N/head
//	.../REPO/src/branch/BRANCH[/FILE]   Gitea/Forgejo; also src/commit/SHA and src/tag/TAG
//	.../REPO/src/BRANCH[/FILE]          Bitbucket (a 40-digit hex BRANCH is a commit)
//	.../REPO/branch/BRANCH              Bitbucket
//	anything else                       the whole path is the repository (OWNER/.../REPO[.git])
//
// Also: scp-like git@HOST:OWNER/REPO.git, ssh:// and git:// URLs, file://
// URLs and absolute local paths (for development), each cloned as given.
package contexturl

import (
	"net/url"
	"path"
	"regexp"
	"strings"
	"unicode"

	"github.com/runyard/runyard/internal/apperr"
)

// Mode says what a context names within its repository.
type Mode int

const (
	// Head is the remote's default branch.
	Head Mode = iota
	// Branch is a branch, or a ref such as refs/pull/1/head, in Ref.
	Branch
	// Tag is a tag, in Ref.
	Tag
	// Commit is a commit, in Commit.
	Commit
)

// Context is a parsed context URL.
type Context struct {
	// URL is the context URL as given, trimmed.
	URL string
	// Host, Owner and Repo name the repository; Owner may hold several
	// path segments (GitLab's nested groups) and is empty for local paths.
	Host, Owner, Repo string
	// CloneURL is what git clones.
	CloneURL string
	Mode     Mode
	// Ref is the branch, tag or ref for Branch and Tag.
	Ref string
	// Commit is the commit for Commit.
	Commit string
}

// maxURL bounds a context URL: well above any real one.
const maxURL = 2048

var (
	scpLike  = regexp.MustCompile(`^([A-Za-z0-9._-]+)@([A-Za-z0-9.-]+):([^/].*)$`)
	sha      = regexp.MustCompile(`^[0-9a-fA-F]{7,64}$`)
	fullSHA  = regexp.MustCompile(`^[0-9a-fA-F]{40}([0-9a-fA-F]{24})?$`)
	number   = regexp.MustCompile(`^[1-9][0-9]{0,9}$`)
	refChars = regexp.MustCompile(`^[A-Za-z0-9._/+@-]+$`)
)

// knownForges are hosts whose repositories are exactly OWNER/REPO, so that
// any further path (issues, actions, wiki) still names the repository.
var knownForges = map[string]bool{"github.com": true, "bitbucket.org": true}

// Parse parses raw; a bad URL is an apperr.Invalid naming field.
func Parse(field, raw string) (*Context, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, apperr.Invalid(field, "is required")
	}
	if len(s) > maxURL {
		return nil, apperr.Invalid(field, "must be at most %d bytes", maxURL)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return nil, apperr.Invalid(field, "must be a URL without spaces, got %q", raw)
	}
	if strings.HasPrefix(s, "-") {
		return nil, apperr.Invalid(field, "must be a URL, got %q", raw)
	}
	if m := scpLike.FindStringSubmatch(s); m != nil {
		return repoOnly(field, s, m[2], m[3], s)
	}
	if strings.HasPrefix(s, "/") {
		return local(field, s, path.Clean(s))
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, apperr.Invalid(field, "must be a repository URL (https://, ssh://, git://, file://, git@host:path or an absolute path), got %q", raw)
	}
	switch u.Scheme {
	case "https", "http":
		return forge(field, s, u)
	case "ssh", "git":
		if u.Host == "" {
			return nil, apperr.Invalid(field, "must name a host, got %q", raw)
		}
		return repoOnly(field, s, u.Hostname(), u.Path, s)
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, apperr.Invalid(field, "a file:// URL must name a local path, got host %q", u.Host)
		}
		return local(field, s, path.Clean(u.Path))
	default:
		return nil, apperr.Invalid(field, "must be a repository URL (https://, ssh://, git://, file://, git@host:path or an absolute path), got %q", raw)
	}
}

// repoOnly is a URL git clones as given, naming no branch.
func repoOnly(field, original, host, p, cloneURL string) (*Context, error) {
	segs := segments(p)
	if len(segs) == 0 {
		return nil, apperr.Invalid(field, "must name a repository, got %q", original)
	}
	c := &Context{URL: original, Host: host, CloneURL: cloneURL}
	c.Owner, c.Repo = ownerRepo(segs)
	if !validRepo(c.Repo) {
		return nil, apperr.Invalid(field, "must name a repository, got %q", original)
	}
	return c, nil
}

func validRepo(name string) bool { return name != "" && name != "." && name != ".." }

func local(field, original, p string) (*Context, error) {
	if p == "/" || p == "." || !path.IsAbs(p) {
		return nil, apperr.Invalid(field, "must name an absolute path to a repository, got %q", original)
	}
	repo := strings.TrimSuffix(path.Base(p), ".git")
	if !validRepo(repo) {
		return nil, apperr.Invalid(field, "must name a repository, got %q", original)
	}
	return &Context{URL: original, Repo: repo, CloneURL: (&url.URL{Scheme: "file", Path: p}).String()}, nil
}

func segments(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func ownerRepo(segs []string) (string, string) {
	last := len(segs) - 1
	return strings.Join(segs[:last], "/"), strings.TrimSuffix(segs[last], ".git")
}

// markers start the part of a forge's path that names something within the
// repository.
var markers = map[string]bool{
	"tree": true, "blob": true, "commit": true, "commits": true, "pull": true, "pulls": true,
	"src": true, "branch": true, "releases": true, "pull-requests": true, "merge_requests": true,
}

func forge(field, original string, u *url.URL) (*Context, error) {
	if u.Host == "" {
		return nil, apperr.Invalid(field, "must name a host, got %q", original)
	}
	if u.User != nil {
		return nil, apperr.Invalid(field, "must not carry credentials: runyard clones with the runner's git credentials")
	}
	host := strings.ToLower(u.Host)
	segs := segments(u.Path)
	repoEnd, rest := len(segs), []string(nil)
	switch {
	case knownForges[host]:
		repoEnd = 2
		if len(segs) > 2 {
			rest = segs[2:]
		}
	case indexFrom(segs, "-", 2) >= 0:
		// GitLab separates the repository (after any number of groups)
		// from what is in it with "-".
		i := indexFrom(segs, "-", 2)
		repoEnd, rest = i, segs[i+1:]
	case markerFrom(segs, 2) >= 0:
		i := markerFrom(segs, 2)
		repoEnd, rest = i, segs[i:]
	}
	if repoEnd < 1 || len(segs) < repoEnd {
		return nil, apperr.Invalid(field, "must name a repository (https://%s/OWNER/REPO), got %q", u.Host, original)
	}
	repoSegs := segs[:repoEnd]
	c := &Context{URL: original, Host: host}
	c.Owner, c.Repo = ownerRepo(repoSegs)
	if !validRepo(c.Repo) {
		return nil, apperr.Invalid(field, "must name a repository, got %q", original)
	}
	clone := url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/" + strings.Join(repoSegs, "/")}
	if knownForges[host] || host == "gitlab.com" {
		clone.Path = strings.TrimSuffix(clone.Path, ".git") + ".git"
	}
	c.CloneURL = clone.String()
	if err := c.within(field, original, rest); err != nil {
		return nil, err
	}
	return c, nil
}

func indexFrom(segs []string, s string, from int) int {
	for i := from; i < len(segs); i++ {
		if segs[i] == s {
			return i
		}
	}
	return -1
}

func markerFrom(segs []string, from int) int {
	for i := from; i < len(segs); i++ {
		if markers[segs[i]] {
			return i
		}
	}
	return -1
}

// within reads what the path after the repository names.
func (c *Context) within(field, original string, rest []string) error {
	if len(rest) == 0 {
		return nil
	}
	arg := func(n int) string {
		if n < len(rest) {
			return rest[n]
		}
		return ""
	}
	tail := func(n int) string {
		if n < len(rest) {
			return strings.Join(rest[n:], "/")
		}
		return ""
	}
	switch rest[0] {
	case "tree", "commits":
		return c.branch(field, original, tail(1))
	case "blob":
		return c.branch(field, original, arg(1))
	case "commit":
		return c.commit(field, original, arg(1))
	case "pull", "pulls":
		return c.numbered(field, original, arg(1), "refs/pull/%s/head")
	case "merge_requests":
		return c.numbered(field, original, arg(1), "refs/merge-requests/%s/head")
	case "releases":
		if arg(1) != "tag" {
			return nil
		}
		if err := c.branch(field, original, tail(2)); err != nil {
			return err
		}
		c.Mode = Tag
		return nil
	case "src":
		switch arg(1) {
		case "branch":
			return c.branch(field, original, arg(2))
		case "commit":
			return c.commit(field, original, arg(2))
		case "tag":
			if err := c.branch(field, original, arg(2)); err != nil {
				return err
			}
			c.Mode = Tag
			return nil
		}
		if fullSHA.MatchString(arg(1)) {
			return c.commit(field, original, arg(1))
		}
		return c.branch(field, original, arg(1))
	case "branch":
		return c.branch(field, original, tail(1))
	case "pull-requests":
		return apperr.Invalid(field, "a Bitbucket pull request has no ref git can clone; use the URL of its source branch, got %q", original)
	}
	// Anything else within a repository (issues, wiki, settings) names the
	// repository itself.
	return nil
}

func (c *Context) branch(field, original, ref string) error {
	if ref == "" {
		return nil
	}
	if !validRef(ref) {
		return apperr.Invalid(field, "names branch %q, which is not a valid branch name", ref)
	}
	c.Mode, c.Ref = Branch, ref
	return nil
}

func (c *Context) commit(field, original, s string) error {
	if !sha.MatchString(s) {
		return apperr.Invalid(field, "must name a commit hash (7 to 64 hex digits) after commit/, got %q", original)
	}
	c.Mode, c.Commit = Commit, strings.ToLower(s)
	return nil
}

func (c *Context) numbered(field, original, n, ref string) error {
	if !number.MatchString(n) {
		return apperr.Invalid(field, "must name a request number, got %q", original)
	}
	c.Mode, c.Ref = Branch, strings.Replace(ref, "%s", n, 1)
	return nil
}

// validRef is a conservative subset of git check-ref-format, the same one
// environments accepts for a clone target.
func validRef(ref string) bool {
	return len(ref) <= 255 && refChars.MatchString(ref) && !strings.HasPrefix(ref, "-") &&
		!strings.HasPrefix(ref, "/") && !strings.HasSuffix(ref, "/") && !strings.Contains(ref, "..") &&
		!strings.Contains(ref, "//") && !strings.HasSuffix(ref, ".lock") && ref != "@"
}
