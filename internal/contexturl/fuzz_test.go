package contexturl

import (
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/apperr"
)

// FuzzParse: any input either parses into something a git command line can
// take safely or is an invalid_argument naming the field; never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"https://github.com/org/repo/tree/feature/x", "https://gitlab.com/a/b/c/-/merge_requests/3",
		"git@host:org/repo.git", "/srv/git/repo", "file:///x/y.git", "https://bitbucket.org/t/r/src/abc/d",
		"https://codeberg.org/o/r/src/branch/main/f", "https://h/o/r/commit/abcdef1", "-x", "https://h/%2e%2e/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := Parse("contextUrl", raw)
		if err != nil {
			if e := apperr.As(err); e == nil || e.Code != apperr.CodeInvalid || e.Field != "contextUrl" {
				t.Fatalf("Parse(%q) = %v, want invalid_argument naming contextUrl", raw, err)
			}
			return
		}
		if c.CloneURL == "" || c.Repo == "" || strings.HasPrefix(c.CloneURL, "-") {
			t.Fatalf("Parse(%q) = %+v", raw, c)
		}
		switch c.Mode {
		case Branch, Tag:
			if !validRef(c.Ref) {
				t.Fatalf("Parse(%q) ref %q", raw, c.Ref)
			}
		case Commit:
			if !sha.MatchString(c.Commit) {
				t.Fatalf("Parse(%q) commit %q", raw, c.Commit)
			}
		}
	})
}
