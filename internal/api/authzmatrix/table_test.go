package authzmatrix_test

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// tablePath is the documentation the matrix is read from.
const tablePath = "../../../docs/authorization.md"

// row is one line of a table of docs/authorization.md.
type row struct {
	// surface is connect, rest, websocket, kubiya, logs, http or console.
	surface string
	// method is a Connect procedure without its leading slash
	// ("gitpod.v1.RunnerService/GetRunner"), with an optional variant in
	// parentheses, or an HTTP route ("GET /logs/{runner}/{log}") with an
	// optional query; "*" for the rule of every other Connect method.
	method string
	// needs is the rule: public, authenticated, identity, scope:S, logs,
	// runner, installation-admin, signed-url or unimplemented.
	needs string
	// objects are the kinds of object the request names; "organization"
	// among them means the organization itself is named.
	objects []string
	line    int
}

func (r row) String() string { return fmt.Sprintf("%s %s (line %d)", r.surface, r.method, r.line) }

// pattern is an HTTP row's mux pattern: the method without its query.
func (r row) pattern() string {
	p, _, _ := strings.Cut(r.method, "?")
	return p
}

// procedure is a Connect row's path, without the variant.
func (r row) procedure() string {
	p, _, _ := strings.Cut(r.method, " (")
	return "/" + p
}

func (r row) namesOrganization() bool { return slices.Contains(r.objects, "organization") }

// otherAnswer is what a caller of another organization gets for naming the
// row's object: not_found, or the code in parentheses after the object
// ("environment class (invalid_argument)": the answer for a class that
// does not exist).
func (r row) otherAnswer() string {
	for _, o := range r.objects {
		if _, code, ok := strings.Cut(o, " ("); ok {
			return strings.TrimSuffix(code, ")")
		}
	}
	return "not_found"
}

var surfaces = []string{"connect", "rest", "websocket", "kubiya", "logs", "http", "console"}

var ruleNames = []string{"public", "authenticated", "identity", "logs", "runner", "installation-admin", "signed-url", "unimplemented", "user", "session", "caller", "replica"}

// knownRule reports whether needs is a rule, or rules joined by " or ".
func knownRule(needs string) bool {
	for r := range strings.SplitSeq(needs, " or ") {
		if !slices.Contains(ruleNames, r) && !strings.HasPrefix(r, "scope:") {
			return false
		}
	}
	return true
}

// readTable parses every row of the tables in docs/authorization.md whose
// first cell is a surface.
func readTable(t *testing.T) []row {
	t.Helper()
	f, err := os.Open(tablePath)
	if err != nil {
		t.Fatalf("open the authorization table: %v", err)
	}
	defer f.Close()
	var rows []row
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			continue
		}
		// "\|" is a | inside a cell (scope:S\|T).
		cells := strings.Split(strings.Trim(strings.ReplaceAll(line, `\|`, "\x00"), "|"), "|")
		for i := range cells {
			cells[i] = strings.ReplaceAll(strings.TrimSpace(cells[i]), "\x00", "|")
		}
		if len(cells) != 4 || !slices.Contains(surfaces, cells[0]) {
			continue
		}
		r := row{surface: cells[0], method: strings.Trim(cells[1], "`"), needs: strings.Trim(cells[2], "`"), line: n}
		if strings.HasPrefix(cells[1], "every other method") {
			r.method = "*"
		}
		if cells[3] != "-" {
			for o := range strings.SplitSeq(cells[3], ",") {
				r.objects = append(r.objects, strings.TrimSpace(o))
			}
		}
		if !knownRule(r.needs) {
			t.Errorf("%s: unknown rule %q", r, r.needs)
		}
		if prev, ok := seen[r.method]; ok {
			t.Errorf("%s: also on line %d", r, prev)
		}
		seen[r.method] = n
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read the authorization table: %v", err)
	}
	if len(rows) < 50 {
		t.Fatalf("only %d rows in %s: has its format changed?", len(rows), tablePath)
	}
	return rows
}
