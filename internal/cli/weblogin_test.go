package cli

import (
	"slices"
	"strings"
	"testing"
)

// TestBrowserCommand: RUNYARD_BROWSER wins over BROWSER; either is a
// command line split as a shell splits words, and the approval link is
// always its own last argument, whatever it holds.
func TestBrowserCommand(t *testing.T) {
	const link = "http://127.0.0.1:8080/auth/cli/approve?port=1&state=a b;$(rm -rf x)"
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
		err  string
	}{
		{"Browser", map[string]string{"BROWSER": "firefox"}, []string{"firefox", link}, ""},
		{"WithArgs", map[string]string{"BROWSER": "  chromium --new-window  "}, []string{"chromium", "--new-window", link}, ""},
		{"Quoted", map[string]string{"BROWSER": `'/opt/My Browser/run' "--profile=a \"b\"" c\ d`}, []string{"/opt/My Browser/run", `--profile=a "b"`, "c d", link}, ""},
		{"RunyardFirst", map[string]string{"BROWSER": "firefox", "RUNYARD_BROWSER": "lynx -dump"}, []string{"lynx", "-dump", link}, ""},
		{"None", map[string]string{}, nil, ""},
		{"ErrQuote", map[string]string{"BROWSER": `"chromium`}, nil, "BROWSER: unterminated double quote"},
		{"ErrSingleQuote", map[string]string{"RUNYARD_BROWSER": `'x`}, nil, "RUNYARD_BROWSER: unterminated single quote"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := browserCommand(link, func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("browserCommand: %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				// Without a display there is nothing to open (on Linux).
				if cmd != nil && cmd.Args[0] != "open" && cmd.Args[0] != "rundll32" {
					t.Fatalf("browserCommand without a browser: %v", cmd.Args)
				}
				return
			}
			if cmd == nil || !slices.Equal(cmd.Args, tc.want) {
				t.Fatalf("browserCommand = %v, want %q", cmd, tc.want)
			}
		})
	}
}
