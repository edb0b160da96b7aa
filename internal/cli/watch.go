package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
)

// This file is --watch/-w, which every list and get command has, as
// kubectl get -w: the command prints what it prints without it, then one
// line per change (one document per change with a structured -o) until
// Ctrl-C (exit 130).
//
// It works on the tree, like harden: a list or get command added later
// watches without doing anything. A watch runs the command's own code again
// each time the change feed (feed.go) says its kind changed, once for its
// JSON, to tell which resources changed, and, for a table, once more for
// the rows of those resources. Kinds without events (pods, tokens,
// users...) are read every 2 s.

// watchKinds are the events of each noun.
var watchKinds = map[string]feedKinds{
	"runners":      {org: []gitpodv1.ResourceType{gitpodv1.ResourceType_RESOURCE_TYPE_RUNNER}},
	"environments": {org: []gitpodv1.ResourceType{gitpodv1.ResourceType_RESOURCE_TYPE_ENVIRONMENT}},
	"secrets":      {org: []gitpodv1.ResourceType{gitpodv1.ResourceType_RESOURCE_TYPE_SECRET}},
	"services":     {env: []gitpodv1.ResourceType{gitpodv1.ResourceType_RESOURCE_TYPE_SERVICE}},
	"tasks":        {env: []gitpodv1.ResourceType{gitpodv1.ResourceType_RESOURCE_TYPE_TASK}},
	"executions":   {env: []gitpodv1.ResourceType{gitpodv1.ResourceType_RESOURCE_TYPE_TASK_EXECUTION}},
}

// noWatch are list and get commands that read nothing from a server.
var noWatch = map[string]bool{"runyard context list": true}

// addWatch gives every list and get command --watch/-w.
func addWatch(g *globals, root *cobra.Command) {
	walk(root, func(c *cobra.Command) {
		if (c.Name() != "list" && c.Name() != "get") || c.RunE == nil || noWatch[c.CommandPath()] {
			return
		}
		if c.Flags().Lookup("watch") != nil {
			return
		}
		usage := "after printing, print each change until Ctrl-C (table: one row per change; -o json: one document per change)"
		if c.Flags().ShorthandLookup("w") == nil {
			c.Flags().BoolP("watch", "w", false, usage)
		} else {
			c.Flags().Bool("watch", false, usage)
		}
		run := c.RunE
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if w, _ := cmd.Flags().GetBool("watch"); !w {
				return run(cmd, args)
			}
			return g.watch(cmd, args, run)
		}
	})
}

// watchStopped ends a watch that Ctrl-C stopped: it exits 130 without a
// message, since nothing was left half done.
type watchStopped struct{}

func (watchStopped) Error() string { return "" }

// watchItem is one resource of a read: its ID and its JSON.
type watchItem struct {
	id  string
	raw json.RawMessage
}

// watchState is what the last read showed.
type watchState struct {
	items []watchItem
	byID  map[string]json.RawMessage
	// rows are the table rows last printed of each resource; detail are
	// the lines of a get's table, by key.
	rows   map[string][]string
	detail map[string][]string
}

func (g *globals) watch(cmd *cobra.Command, args []string, run func(*cobra.Command, []string) error) error {
	ctx := cmd.Context()
	noun := ""
	if cmd.HasParent() {
		noun = cmd.Parent().Name()
	}
	kinds, ok := watchKinds[noun]
	if !ok {
		kinds = feedKinds{poll: true}
	}
	isList := cmd.Name() == "list"
	structured := g.structured()
	userOutput, userJQ, stderr := g.output, g.jq, g.stderr
	defer func() { g.output, g.jq, g.stderr = userOutput, userJQ, stderr }()

	// The feed first: a change made after the first read is signalled.
	f, err := g.openFeed(ctx, kinds)
	if err != nil {
		return stopped(ctx, err)
	}
	out := &streamTable{out: g.stdout}
	if file, ok := g.stdout.(*os.File); ok && term.IsTerminal(int(file.Fd())) && !g.wide() {
		if w, _, err := term.GetSize(int(file.Fd())); err == nil {
			out.limit = w
		}
	}
	st := &watchState{byID: map[string]json.RawMessage{}, rows: map[string][]string{}}
	first, docs, warned := true, 0, false
	for {
		items, err := g.watchRead(cmd, args, run, isList)
		// A get's resource deleted after the first read.
		gone := err != nil && !first && !isList && connect.CodeOf(err) == connect.CodeNotFound
		if gone {
			err = nil
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return stopped(ctx, err)
		case err != nil && connect.CodeOf(err) == connect.CodeUnavailable && !first:
			if !warned {
				fmt.Fprintln(stderr, "runyard: watch: "+oneLine(errorMessage(err))+"; trying again")
				warned = true
			}
		case err != nil:
			return err
		default:
			warned = false
			g.stderr = io.Discard // notes of the command, once is enough
			changed, deleted := st.diff(items)
			if gone && !isList {
				deleted = []watchItem{{raw: st.byID[""]}}
			}
			if structured {
				g.output, g.jq = userOutput, userJQ
				for _, it := range append(changed, deleted...) {
					if it.raw == nil {
						continue
					}
					if docs > 0 && strings.HasPrefix(userOutput, "yaml") && userJQ == "" {
						fmt.Fprintln(g.stdout, "---")
					}
					if err := g.printRawJSON(it.raw); err != nil {
						return err
					}
					docs++
				}
			} else if err := g.watchTable(cmd, args, run, isList, st, out, first, changed, deleted, gone); err != nil {
				if ctx.Err() != nil {
					return stopped(ctx, err)
				}
				return err
			}
			st.keep(items)
			if gone && !isList {
				// A get's resource does not come back.
				return nil
			}
			first = false
		}
		select {
		case <-ctx.Done():
			return stopped(ctx, ctx.Err())
		case <-f.C:
		}
	}
}

// stopped turns the end of a watch by a signal into watchStopped.
func stopped(ctx context.Context, err error) error {
	if interruptedBy(ctx) != 0 || errors.Is(err, context.Canceled) {
		return watchStopped{}
	}
	return err
}

// capture runs the command with its output in a buffer, in the -o format.
func (g *globals) capture(cmd *cobra.Command, args []string, run func(*cobra.Command, []string) error, output string) ([]byte, error) {
	saveOut, saveO, saveJQ, saveRaw := g.stdout, g.output, g.jq, g.rawTables
	defer func() { g.stdout, g.output, g.jq, g.rawTables = saveOut, saveO, saveJQ, saveRaw }()
	var buf bytes.Buffer
	g.stdout, g.output, g.jq = &buf, output, ""
	g.rawTables = output == "table" || output == "wide"
	err := run(cmd, args)
	return buf.Bytes(), err
}

// watchRead reads the resources as JSON.
func (g *globals) watchRead(cmd *cobra.Command, args []string, run func(*cobra.Command, []string) error, isList bool) ([]watchItem, error) {
	raw, err := g.capture(cmd, args, run, "json")
	if err != nil {
		return nil, err
	}
	return splitItems(raw, isList)
}

// splitItems splits a list's JSON ({"<plural>": [...], ...}) into its
// resources; a get's JSON is one resource.
func splitItems(raw []byte, isList bool) ([]watchItem, error) {
	raw = bytes.TrimSpace(raw)
	if !isList {
		return []watchItem{{raw: raw}}, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("watch: decode the list: %w", err)
	}
	keys := make([]string, 0, len(doc))
	for k, v := range doc {
		if b := bytes.TrimSpace(v); len(b) > 0 && b[0] == '[' {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return []watchItem{{raw: raw}}, nil
	}
	sort.Strings(keys)
	var list []json.RawMessage
	if err := json.Unmarshal(doc[keys[0]], &list); err != nil {
		return nil, fmt.Errorf("watch: decode the list: %w", err)
	}
	items := make([]watchItem, len(list))
	for i, r := range list {
		var c bytes.Buffer
		if json.Compact(&c, r) == nil {
			r = c.Bytes()
		}
		items[i] = watchItem{id: itemID(r), raw: r}
		if items[i].id == "" {
			items[i].id = string(r)
		}
	}
	return items, nil
}

// idFields are the fields that identify a resource in the JSON of the
// CLI's lists, in the order they are tried.
var idFields = []string{"id", "runnerId", "tokenId", "userId", "key", "pod_key", "name"}

func itemID(raw json.RawMessage) string {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	for _, f := range idFields {
		if s, ok := m[f].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// diff returns the resources new or changed since the last read, and those
// gone, in the order of the read.
func (st *watchState) diff(items []watchItem) (changed, deleted []watchItem) {
	seen := map[string]bool{}
	for _, it := range items {
		seen[it.id] = true
		if old, ok := st.byID[it.id]; !ok || !bytes.Equal(old, it.raw) {
			changed = append(changed, it)
		}
	}
	for _, it := range st.items {
		if !seen[it.id] {
			deleted = append(deleted, it)
		}
	}
	return changed, deleted
}

func (st *watchState) keep(items []watchItem) {
	st.items = items
	st.byID = make(map[string]json.RawMessage, len(items))
	for _, it := range items {
		st.byID[it.id] = it.raw
	}
}

// watchTable prints the table rows of what changed: the whole table the
// first time, then the row of each changed resource (a get: its changed
// lines) and the last row of each deleted one, marked.
func (g *globals) watchTable(cmd *cobra.Command, args []string, run func(*cobra.Command, []string) error, isList bool,
	st *watchState, out *streamTable, first bool, changed, deleted []watchItem, gone bool) error {
	if !first && len(changed) == 0 && len(deleted) == 0 {
		return nil
	}
	var rows [][]string
	if !gone {
		text, err := g.capture(cmd, args, run, g.output)
		if err != nil {
			if !isList && connect.CodeOf(err) == connect.CodeNotFound {
				gone = true
			} else {
				return err
			}
		}
		for _, line := range strings.Split(strings.TrimRight(string(text), "\n"), "\n") {
			if line != "" {
				rows = append(rows, strings.Split(line, "\t"))
			}
		}
	}
	if !isList {
		return st.printDetail(out, rows, first, gone)
	}
	var header []string
	if len(rows) > 0 && isHeader(rows[0]) {
		header, rows = rows[0], rows[1:]
	}
	// Each row belongs to the resource whose ID is one of its cells.
	ids := map[string]bool{}
	for _, it := range changed {
		ids[it.id] = true
	}
	for id := range st.byID {
		ids[id] = true
	}
	rowOf := map[string][]string{}
	for _, r := range rows {
		for _, cell := range r {
			if ids[cell] {
				if _, dup := rowOf[cell]; !dup {
					rowOf[cell] = r
				}
				break
			}
		}
	}
	var print [][]string
	if first {
		print = rows
		if header != nil {
			print = append([][]string{header}, print...)
		}
	} else {
		for _, it := range changed {
			if r, ok := rowOf[it.id]; ok {
				print = append(print, r)
			}
		}
		for _, it := range deleted {
			if r, ok := st.rows[it.id]; ok {
				print = append(print, append(append([]string{}, r...), "(deleted)"))
			}
		}
	}
	for id, r := range rowOf {
		st.rows[id] = r
	}
	return out.write(print)
}

// printDetail prints a get's table: all of it the first time, then the
// lines that differ from the last read (the first cell of a line is its
// key), then "(deleted)" when the resource is gone.
func (st *watchState) printDetail(out *streamTable, rows [][]string, first, gone bool) error {
	if gone {
		return out.write([][]string{{"(deleted)"}})
	}
	next := map[string][]string{}
	var print [][]string
	count := map[string]int{}
	for _, r := range rows {
		key := fmt.Sprintf("%s#%d", r[0], count[r[0]])
		count[r[0]]++
		next[key] = r
		if old, ok := st.detail[key]; first || !ok || strings.Join(old, "\t") != strings.Join(r, "\t") {
			print = append(print, r)
		}
	}
	st.detail = next
	return out.write(print)
}

// isHeader reports whether a row is a table's header (upper case).
func isHeader(row []string) bool {
	s := strings.Join(row, " ")
	return strings.ToUpper(s) == s && strings.ToLower(s) != s
}

// streamTable prints rows as they come, aligned to the widest cell of each
// column seen so far (rows already printed stay as they are).
type streamTable struct {
	out    io.Writer
	widths []int
	limit  int // the terminal's width, 0 for none
}

func (t *streamTable) write(rows [][]string) error {
	if len(rows) == 0 {
		return nil
	}
	for j, w := range columnWidths(rows) {
		if j >= len(t.widths) {
			t.widths = append(t.widths, w)
		} else if w > t.widths[j] {
			t.widths[j] = w
		}
	}
	widths := append([]int{}, t.widths...)
	fitWidths(widths, t.limit)
	var b strings.Builder
	for _, row := range rows {
		var line strings.Builder
		for j, cell := range row {
			cell = truncate(cell, widths[j])
			line.WriteString(cell)
			if j < len(row)-1 {
				line.WriteString(strings.Repeat(" ", widths[j]-utf8.RuneCountInString(cell)+2))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	_, err := io.WriteString(t.out, b.String())
	return err
}
