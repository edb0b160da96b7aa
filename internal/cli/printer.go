package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/template"
	"unicode/utf8"

	"github.com/itchyny/gojq"
	"golang.org/x/term"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"k8s.io/client-go/util/jsonpath"
	"sigs.k8s.io/yaml"
)

// This file is the one printer every command feeds. A command prints a
// table itself (through g.table, which fits it to the terminal); every other
// -o format, and --jq, renders the command's JSON — the API's JSON of the
// resource (protojson field names), or {"<plural>": [...]} for a list — so
// that one resource has one shape in every format (docs/cli-output.md).

// outputFormat is a parsed -o.
type outputFormat struct {
	kind string // table, wide, json, yaml, jsonpath, go-template
	expr string // the expression of jsonpath and go-template
}

func parseOutput(s string) (outputFormat, error) {
	kind, expr, _ := strings.Cut(s, "=")
	switch kind {
	case "table", "wide", "json", "yaml":
		if expr != "" {
			break
		}
		return outputFormat{kind: kind}, nil
	case "jsonpath", "go-template":
		if expr == "" {
			return outputFormat{}, usagef("--output %s needs an expression: -o %s=EXPR", kind, kind)
		}
		return outputFormat{kind: kind, expr: expr}, nil
	}
	return outputFormat{}, usagef("--output must be table, wide, json, yaml, jsonpath=EXPR or go-template=TEMPLATE, got %q", s)
}

// checkOutput refuses an -o or --jq the printer cannot render, before the
// command changes anything.
func (g *globals) checkOutput() error {
	f, err := parseOutput(g.output)
	if err != nil {
		return err
	}
	if g.jq != "" {
		if f.kind != "table" && f.kind != "json" {
			return usagef("--jq works on the JSON output: leave out --output %s", g.output)
		}
		if _, err := gojq.Parse(g.jq); err != nil {
			return usagef("--jq: %v", err)
		}
	}
	switch f.kind {
	case "jsonpath":
		if err := jsonpath.New("output").Parse(f.expr); err != nil {
			return usagef("--output jsonpath: %v", err)
		}
	case "go-template":
		if _, err := template.New("output").Parse(f.expr); err != nil {
			return usagef("--output go-template: %v", err)
		}
	}
	return nil
}

// structured reports whether the output is rendered from JSON (every
// format but the tables).
func (g *globals) structured() bool {
	f, err := parseOutput(g.output)
	return g.jq != "" || (err == nil && f.kind != "table" && f.kind != "wide")
}

// wide reports whether -o wide asks for the tables' extra columns.
func (g *globals) wide() bool { return g.output == "wide" }

// printJSON prints msg, the API's JSON of one resource or answer.
func (g *globals) printJSON(msg proto.Message) error {
	b, err := protojson.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	return g.printRawJSON(b)
}

// printJSONList prints items under key as one JSON object.
func (g *globals) printJSONList(key string, items []proto.Message) error {
	raw := make([]json.RawMessage, len(items))
	for i, m := range items {
		b, err := protojson.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		raw[i] = b
	}
	b, err := json.Marshal(map[string]any{key: raw})
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	return g.printRawJSON(b)
}

// printValue prints v, a Go value with JSON tags, like an API answer.
func (g *globals) printValue(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	return g.printRawJSON(b)
}

// printRawJSON renders raw in the -o format (json when -o is table: the
// callers print tables themselves), or through --jq.
func (g *globals) printRawJSON(raw json.RawMessage) error {
	f, err := parseOutput(g.output)
	if err != nil {
		return err
	}
	if g.jq != "" {
		return printJQ(g.stdout, g.jq, raw)
	}
	switch f.kind {
	case "yaml":
		b, err := yaml.JSONToYAML(raw)
		if err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		_, err = g.stdout.Write(b)
		return err
	case "jsonpath", "go-template":
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("decode json: %w", err)
		}
		var buf bytes.Buffer
		if f.kind == "jsonpath" {
			jp := jsonpath.New("output")
			if err := jp.Parse(f.expr); err != nil {
				return usagef("--output jsonpath: %v", err)
			}
			if err := jp.Execute(&buf, v); err != nil {
				return fmt.Errorf("--output jsonpath: %w", err)
			}
		} else {
			t, err := template.New("output").Option("missingkey=zero").Parse(f.expr)
			if err != nil {
				return usagef("--output go-template: %v", err)
			}
			if err := t.Execute(&buf, v); err != nil {
				return fmt.Errorf("--output go-template: %w", err)
			}
		}
		// Like kubectl, the expression decides the layout; a final
		// newline keeps the shell prompt on its own line.
		if buf.Len() > 0 && !bytes.HasSuffix(buf.Bytes(), []byte("\n")) {
			buf.WriteByte('\n')
		}
		_, err := g.stdout.Write(buf.Bytes())
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	buf.WriteByte('\n')
	_, err = g.stdout.Write(buf.Bytes())
	return err
}

// printJQ prints each result of the jq expression on raw: strings as they
// are (as gh --jq does), anything else as compact JSON.
func printJQ(w io.Writer, expr string, raw json.RawMessage) error {
	q, err := gojq.Parse(expr)
	if err != nil {
		return usagef("--jq: %v", err)
	}
	code, err := gojq.Compile(q)
	if err != nil {
		return usagef("--jq: %v", err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("decode json: %w", err)
	}
	iter := code.Run(v)
	for {
		out, ok := iter.Next()
		if !ok {
			return nil
		}
		if err, isErr := out.(error); isErr {
			return fmt.Errorf("--jq: %w", err)
		}
		if s, isString := out.(string); isString {
			fmt.Fprintln(w, s)
			continue
		}
		b, err := gojq.Marshal(out)
		if err != nil {
			return fmt.Errorf("--jq: %w", err)
		}
		fmt.Fprintln(w, string(b))
	}
}

// table returns the writer of a table: tab-separated cells, one row a line.
// Flush aligns the columns and, on a terminal, fits the table to its width
// by shortening the widest cells (not with -o wide, which shows everything).
// The header row is bold on a terminal unless NO_COLOR is set.
func (g *globals) table() *tableWriter {
	tw := &tableWriter{out: g.stdout, raw: g.rawTables}
	if f, ok := g.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && !g.wide() {
			tw.width = w
		}
		tw.color = os.Getenv("NO_COLOR") == ""
	}
	return tw
}

// tableWriter collects a table's rows until Flush.
type tableWriter struct {
	out   io.Writer
	buf   bytes.Buffer
	width int // 0: no limit
	color bool
	// raw writes the cells tab-separated, unaligned: for --watch, which
	// aligns rows itself as they come (watch.go).
	raw bool
}

func (t *tableWriter) Write(p []byte) (int, error) { return t.buf.Write(p) }

// Flush writes the aligned table.
func (t *tableWriter) Flush() error {
	if t.raw {
		_, err := t.out.Write(t.buf.Bytes())
		t.buf.Reset()
		return err
	}
	text := strings.TrimSuffix(t.buf.String(), "\n")
	t.buf.Reset()
	if text == "" {
		return nil
	}
	var rows [][]string
	for _, line := range strings.Split(text, "\n") {
		rows = append(rows, strings.Split(line, "\t"))
	}
	widths := columnWidths(rows)
	fitWidths(widths, t.width)
	var out strings.Builder
	for i, row := range rows {
		var line strings.Builder
		for j, cell := range row {
			cell = truncate(cell, widths[j])
			line.WriteString(cell)
			if j < len(row)-1 {
				line.WriteString(strings.Repeat(" ", widths[j]-utf8.RuneCountInString(cell)+2))
			}
		}
		s := line.String()
		if i == 0 && t.color && strings.ToUpper(s) == s {
			s = "\x1b[1m" + s + "\x1b[0m"
		}
		out.WriteString(s + "\n")
	}
	_, err := io.WriteString(t.out, out.String())
	return err
}

func columnWidths(rows [][]string) []int {
	var widths []int
	for _, row := range rows {
		for j, cell := range row {
			if j >= len(widths) {
				widths = append(widths, 0)
			}
			if n := utf8.RuneCountInString(cell); n > widths[j] {
				widths[j] = n
			}
		}
	}
	return widths
}

// fitWidths shrinks the widest columns, one character at a time, until the
// table with two spaces between columns fits limit. The first column, the
// ID or key people copy, is never shortened, and no other column gets
// narrower than 8 characters (or its own width).
func fitWidths(widths []int, limit int) {
	if limit <= 0 {
		return
	}
	total := func() int {
		n := 2 * (len(widths) - 1)
		for _, w := range widths {
			n += w
		}
		return n
	}
	for total() > limit {
		if len(widths) < 2 {
			return
		}
		widest := 1
		for j := 2; j < len(widths); j++ {
			if widths[j] > widths[widest] {
				widest = j
			}
		}
		if widths[widest] <= 8 {
			return
		}
		widths[widest]--
	}
}

// truncate shortens s to n characters, ending in "…" when it cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
