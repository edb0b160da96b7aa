package contexturl

import (
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/apperr"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want Context // URL is filled from url
	}{
		// GitHub.
		{"https://github.com/org/repo", Context{Host: "github.com", Owner: "org", Repo: "repo", CloneURL: "https://github.com/org/repo.git"}},
		{"https://github.com/org/repo.git", Context{Host: "github.com", Owner: "org", Repo: "repo", CloneURL: "https://github.com/org/repo.git"}},
		{"https://github.com/org/repo/", Context{Host: "github.com", Owner: "org", Repo: "repo", CloneURL: "https://github.com/org/repo.git"}},
		{"https://github.com/org/repo/tree/main", Context{Host: "github.com", Owner: "org", Repo: "repo", CloneURL: "https://github.com/org/repo.git", Mode: Branch, Ref: "main"}},
		{"https://github.com/org/repo/tree/feature/login", Context{Host: "github.com", Owner: "org", Repo: "repo", CloneURL: "https://github.com/org/repo.git", Mode: Branch, Ref: "feature/login"}},
		{"https://github.com/org/repo/blob/dev/cmd/main.go", Context{Host: "github.com", Owner: "org", Repo: "repo", CloneURL: "https://github.com/org/repo.git", Mode: Branch, Ref: "dev"}},
		{"https://github.com/org/repo/commit/0123456789abcdef0123456789abcdef01234567", Context{Host: "github.com", Owner: "org", Repo: "repo", CloneURL: "https://github.com/org/repo.git", Mode: Commit, Commit: "0123456789abcdef0123456789abcdef01234567"}},
		{"https://github.com/org/repo/pull/42", Context{Host: "github.com", Owner: "org", Repo: "repo", CloneURL: "https://github.com/org/repo.git", Mode: Branch, Ref: "refs/pull/42/head"}},
		{"https://github.com/org/repo/pull/42/files", Context{Host: "github.com", Owner: "org", Repo: "repo", CloneURL: "https://github.com/org/repo.git", Mode: Branch, Ref: "refs/pull/42/head"}},
		{"https://github.com/org/repo/releases/tag/v1.2.3", Context{Host: "github.com", Owner: "org", Repo: "repo", CloneURL: "https://github.com/org/repo.git", Mode: Tag, Ref: "v1.2.3"}},
		{"https://github.com/org/repo/issues/7", Context{Host: "github.com", Owner: "org", Repo: "repo", CloneURL: "https://github.com/org/repo.git"}},
		{"https://github.com/org/repo?tab=readme#top", Context{Host: "github.com", Owner: "org", Repo: "repo", CloneURL: "https://github.com/org/repo.git"}},
		// GitHub Enterprise or any host with GitHub's shapes.
		{"https://git.example.com/org/repo/tree/release-1", Context{Host: "git.example.com", Owner: "org", Repo: "repo", CloneURL: "https://git.example.com/org/repo", Mode: Branch, Ref: "release-1"}},
		// GitLab.
		{"https://gitlab.com/group/repo", Context{Host: "gitlab.com", Owner: "group", Repo: "repo", CloneURL: "https://gitlab.com/group/repo.git"}},
		{"https://gitlab.com/group/sub/deeper/repo", Context{Host: "gitlab.com", Owner: "group/sub/deeper", Repo: "repo", CloneURL: "https://gitlab.com/group/sub/deeper/repo.git"}},
		{"https://gitlab.com/group/sub/repo/-/tree/feat/x", Context{Host: "gitlab.com", Owner: "group/sub", Repo: "repo", CloneURL: "https://gitlab.com/group/sub/repo.git", Mode: Branch, Ref: "feat/x"}},
		{"https://gitlab.com/group/repo/-/blob/main/README.md", Context{Host: "gitlab.com", Owner: "group", Repo: "repo", CloneURL: "https://gitlab.com/group/repo.git", Mode: Branch, Ref: "main"}},
		{"https://gitlab.com/group/repo/-/commit/abcdef1", Context{Host: "gitlab.com", Owner: "group", Repo: "repo", CloneURL: "https://gitlab.com/group/repo.git", Mode: Commit, Commit: "abcdef1"}},
		{"https://gitlab.com/group/sub/repo/-/merge_requests/12", Context{Host: "gitlab.com", Owner: "group/sub", Repo: "repo", CloneURL: "https://gitlab.com/group/sub/repo.git", Mode: Branch, Ref: "refs/merge-requests/12/head"}},
		{"https://gitlab.example.org/a/b/c/-/tree/main", Context{Host: "gitlab.example.org", Owner: "a/b", Repo: "c", CloneURL: "https://gitlab.example.org/a/b/c", Mode: Branch, Ref: "main"}},
		// Bitbucket.
		{"https://bitbucket.org/team/repo", Context{Host: "bitbucket.org", Owner: "team", Repo: "repo", CloneURL: "https://bitbucket.org/team/repo.git"}},
		{"https://bitbucket.org/team/repo/src/develop", Context{Host: "bitbucket.org", Owner: "team", Repo: "repo", CloneURL: "https://bitbucket.org/team/repo.git", Mode: Branch, Ref: "develop"}},
		{"https://bitbucket.org/team/repo/src/develop/docs/a.md", Context{Host: "bitbucket.org", Owner: "team", Repo: "repo", CloneURL: "https://bitbucket.org/team/repo.git", Mode: Branch, Ref: "develop"}},
		{"https://bitbucket.org/team/repo/src/0123456789abcdef0123456789abcdef01234567/", Context{Host: "bitbucket.org", Owner: "team", Repo: "repo", CloneURL: "https://bitbucket.org/team/repo.git", Mode: Commit, Commit: "0123456789abcdef0123456789abcdef01234567"}},
		{"https://bitbucket.org/team/repo/branch/feature/y", Context{Host: "bitbucket.org", Owner: "team", Repo: "repo", CloneURL: "https://bitbucket.org/team/repo.git", Mode: Branch, Ref: "feature/y"}},
		// Gitea and Forgejo.
		{"https://codeberg.org/org/repo/src/branch/main", Context{Host: "codeberg.org", Owner: "org", Repo: "repo", CloneURL: "https://codeberg.org/org/repo", Mode: Branch, Ref: "main"}},
		{"https://codeberg.org/org/repo/src/branch/main/README.md", Context{Host: "codeberg.org", Owner: "org", Repo: "repo", CloneURL: "https://codeberg.org/org/repo", Mode: Branch, Ref: "main"}},
		{"https://gitea.example.com/org/repo/src/commit/abcdef0123", Context{Host: "gitea.example.com", Owner: "org", Repo: "repo", CloneURL: "https://gitea.example.com/org/repo", Mode: Commit, Commit: "abcdef0123"}},
		{"https://gitea.example.com/org/repo/src/tag/v2", Context{Host: "gitea.example.com", Owner: "org", Repo: "repo", CloneURL: "https://gitea.example.com/org/repo", Mode: Tag, Ref: "v2"}},
		{"https://codeberg.org/org/repo/pulls/3", Context{Host: "codeberg.org", Owner: "org", Repo: "repo", CloneURL: "https://codeberg.org/org/repo", Mode: Branch, Ref: "refs/pull/3/head"}},
		// Any host.
		{"https://git.example.com/org/repo.git", Context{Host: "git.example.com", Owner: "org", Repo: "repo", CloneURL: "https://git.example.com/org/repo.git"}},
		{"http://127.0.0.1:3000/repo", Context{Host: "127.0.0.1:3000", Repo: "repo", CloneURL: "http://127.0.0.1:3000/repo"}},
		{"  https://Git.Example.com/a/b  ", Context{Host: "git.example.com", Owner: "a", Repo: "b", CloneURL: "https://Git.Example.com/a/b"}},
		// SSH and git.
		{"git@github.com:org/repo.git", Context{Host: "github.com", Owner: "org", Repo: "repo", CloneURL: "git@github.com:org/repo.git"}},
		{"git@gitlab.com:group/sub/repo.git", Context{Host: "gitlab.com", Owner: "group/sub", Repo: "repo", CloneURL: "git@gitlab.com:group/sub/repo.git"}},
		{"ssh://git@host.example:2222/org/repo.git", Context{Host: "host.example", Owner: "org", Repo: "repo", CloneURL: "ssh://git@host.example:2222/org/repo.git"}},
		{"git://host.example/repo.git", Context{Host: "host.example", Repo: "repo", CloneURL: "git://host.example/repo.git"}},
		// Local, for development.
		{"file:///srv/git/project.git", Context{Repo: "project", CloneURL: "file:///srv/git/project.git"}},
		{"/home/me/src/project", Context{Repo: "project", CloneURL: "file:///home/me/src/project"}},
		{"/home/me/src/project/../other/", Context{Repo: "other", CloneURL: "file:///home/me/src/other"}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got, err := Parse("contextUrl", tc.url)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := tc.want
			want.URL = strings.TrimSpace(tc.url)
			if *got != want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tc.url, *got, want)
			}
		})
	}
}

func TestParse_Invalid(t *testing.T) {
	for _, tc := range []struct{ url, msg string }{
		{"", "is required"},
		{"   ", "is required"},
		{"https://github.com/org", "must name a repository"},
		{"https://github.com/", "must name a repository"},
		{"https://example.com", "must name a repository"},
		{"https://user:token@github.com/org/repo", "credentials"},
		{"https://github.com/org/repo/commit/xyz", "commit hash"},
		{"https://github.com/org/repo/pull/abc", "request number"},
		{"https://github.com/org/repo/tree/bad..name", "not a valid branch name"},
		{"https://bitbucket.org/team/repo/pull-requests/4", "Bitbucket pull request"},
		{"ftp://example.com/repo", "must be a repository URL"},
		{"relative/path", "must be a repository URL"},
		{"-upload-pack=evil", "must be a URL"},
		{"https://github.com/org/re po", "without spaces"},
		{"file://remote.host/srv/repo", "local path"},
		{"/", "absolute path"},
		{"git@host:.git", "must name a repository"},
		{"/srv/.git", "must name a repository"},
		{"ssh://host/..", "must name a repository"},
		{"https://" + strings.Repeat("a", 3000) + ".com/o/r", "at most"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := Parse("spec.content.initializer.specs[0].contextUrl.url", tc.url)
			e := apperr.As(err)
			if e == nil || e.Code != apperr.CodeInvalid {
				t.Fatalf("Parse(%q) = %v, want invalid_argument", tc.url, err)
			}
			if e.Field != "spec.content.initializer.specs[0].contextUrl.url" || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("Parse(%q) = field %q message %q, want the field and %q", tc.url, e.Field, e.Message, tc.msg)
			}
		})
	}
}
