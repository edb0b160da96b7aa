package spec

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/runyard/runyard/internal/apperr"
)

// Line returns the 1-based line of data that err, an error of Parse or
// Validate on data, is about, or 0 when it names no place in the file. An
// editor shows the error there.
//
// A YAML syntax error carries its line in the parser's message. Every other
// error names the offending value by its path (Field), which Line follows
// through the file's nodes to the key (or list item) it names; a path that
// leaves the file (a missing required field) stops at the deepest value it
// reaches, the object the field is missing from.
func Line(data []byte, err error) int {
	var ae *apperr.Error
	if !errors.As(err, &ae) {
		return 0
	}
	if ae.Field == "" {
		if syntaxLine.MatchString(ae.Message) {
			return syntaxErrorLine(data, ae.Message)
		}
		return messageLine(ae.Message)
	}
	segs, ok := splitPath(ae.Field)
	if !ok {
		return 0
	}
	var doc yaml.Node
	if yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc) != nil || len(doc.Content) == 0 {
		return 0
	}
	// A duplicate key's path names the first; the message the second, which
	// is the slip.
	if n := duplicateLine(ae.Message); n > 0 {
		return n
	}
	return walk(doc.Content[0], segs)
}

var (
	syntaxLine    = regexp.MustCompile(`^invalid YAML: line (\d+):`)
	anotherLine   = regexp.MustCompile(`found another at line (\d+)$`)
	duplicateKeys = regexp.MustCompile(`^duplicate key \(lines \d+ and (\d+)\)$`)
)

// maxScanLines bounds the files whose syntax error syntaxErrorLine places
// by parsing prefixes (quadratic in the lines); a longer file gets the
// parser's own line.
const maxScanLines = 4000

// syntaxErrorLine returns the line a YAML syntax error of data is on. The
// parser's message names the line of the construct it was in, often lines
// before the slip (and one too few, a known bug of yaml.v3); the first line
// that no longer parses is the one to fix: it is one past the longest
// prefix of whole lines that parses.
func syntaxErrorLine(data []byte, msg string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > maxScanLines {
		return messageLine(msg) + 1
	}
	end := len(data)
	for k := len(lines) - 1; k >= 0; k-- {
		end -= len(lines[k])
		if parses(data[:end]) {
			return k + 1
		}
	}
	return 1
}

// parses reports whether data is YAML without a syntax error.
func parses(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}

// messageLine reads the line from a message of Parse that names no field.
func messageLine(msg string) int {
	for _, re := range []*regexp.Regexp{syntaxLine, anotherLine} {
		if m := re.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	return 0
}

func duplicateLine(msg string) int {
	if m := duplicateKeys.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// segment is one step of a path: a key of a mapping, or an index of a list.
type segment struct {
	key   string
	index int
	isKey bool
}

// splitPath reads a path as child writes it: keys joined by '.', a key
// that is not plain as ["quoted"], and list indexes as [n].
func splitPath(p string) ([]segment, bool) {
	var out []segment
	for p != "" {
		switch {
		case strings.HasPrefix(p, "."):
			p = p[1:]
		case strings.HasPrefix(p, `["`):
			q, err := strconv.QuotedPrefix(p[1:])
			if err != nil || !strings.HasPrefix(p[1+len(q):], "]") {
				return nil, false
			}
			key, _ := strconv.Unquote(q)
			out = append(out, segment{key: key, isKey: true})
			p = p[1+len(q)+1:]
		case strings.HasPrefix(p, "["):
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return nil, false
			}
			i, err := strconv.Atoi(p[1:end])
			if err != nil {
				return nil, false
			}
			out = append(out, segment{index: i})
			p = p[end+1:]
		default:
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			out = append(out, segment{key: p[:end], isKey: true})
			p = p[end:]
		}
	}
	return out, true
}

// walk follows segs from n and returns the line of the last key or item it
// reaches (n's own line when it reaches none).
func walk(n *yaml.Node, segs []segment) int {
	line := n.Line
	budget := maxNodes
	for _, s := range segs {
		n = deref(n)
		var next *yaml.Node
		if s.isKey {
			k, v := lookup(n, s.key, &budget)
			if k == nil {
				return line
			}
			line, next = k.Line, v
		} else {
			if n.Kind != yaml.SequenceNode || s.index < 0 || s.index >= len(n.Content) {
				return line
			}
			next = n.Content[s.index]
			line = next.Line
		}
		n = next
	}
	return line
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// lookup finds key in mapping n, its own keys first, then those merged in
// with <<, as Parse reads them. budget bounds the merges it follows.
func lookup(n *yaml.Node, key string, budget *int) (k, v *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn := deref(n.Content[i])
		if kn.Kind != yaml.ScalarNode {
			continue
		}
		if kn.ShortTag() == "!!merge" {
			merges = append(merges, n.Content[i+1])
			continue
		}
		if kn.Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	for _, m := range merges {
		m = deref(m)
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, src := range srcs {
			if *budget--; *budget < 0 {
				return nil, nil
			}
			if k, v := lookup(deref(src), key, budget); k != nil {
				return k, v
			}
		}
	}
	return nil, nil
}
