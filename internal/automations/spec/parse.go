package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/runyard/runyard/internal/apperr"
)

// maxNodes bounds the nodes Parse visits. Aliases are expanded where they are
// used, so a small file of nested aliases could otherwise make the walk
// exponential ("billion laughs").
const maxNodes = 1 << 20

// Parse reads an automations file from YAML (JSON, being YAML, works too).
// It is strict as the vendor is: an unknown field, a value of the wrong type,
// a duplicate key or a second document is an invalid_argument *apperr.Error
// whose Field is the path of the offending value (services.db.commands.strat)
// and whose message carries its line. An empty file is an empty File. Parse
// checks shape only; Validate checks the rules.
func Parse(data []byte) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &File{}, nil
		}
		return nil, syntaxError(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(err)
	default:
		return nil, apperr.Invalid("", "must be a single YAML document, found another at line %d", next.Line)
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return &File{}, nil
		}
		root = doc.Content[0]
	}
	d := &decoder{budget: maxNodes}
	return d.file(root)
}

func syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return &apperr.Error{Code: apperr.CodeInvalid, Message: "invalid YAML: " + msg, Err: err}
}

// fields maps the keys of one object to the functions that decode their
// values; the keys double as the suggestions for a misspelt field.
type fields map[string]func(path string, v *yaml.Node) error

type decoder struct {
	budget int
}

func (d *decoder) file(n *yaml.Node) (*File, error) {
	f := &File{}
	err := d.object("", n, fields{
		"services": func(p string, v *yaml.Node) (err error) {
			f.Services, err = refMap(d, p, v, d.service)
			return err
		},
		"tasks": func(p string, v *yaml.Node) (err error) {
			f.Tasks, err = refMap(d, p, v, d.task)
			return err
		},
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (d *decoder) service(path string, n *yaml.Node) (Service, error) {
	var s Service
	err := d.object(path, n, fields{
		"name":        d.str(&s.Name),
		"description": d.str(&s.Description),
		"role": func(p string, v *yaml.Node) error {
			var r string
			err := d.str(&r)(p, v)
			s.Role = Role(r)
			return err
		},
		"commands": func(p string, v *yaml.Node) error {
			return d.object(p, v, fields{
				"start": d.str(&s.Commands.Start),
				"ready": d.str(&s.Commands.Ready),
				"stop":  d.str(&s.Commands.Stop),
			})
		},
		"runsOn":      d.runsOn(&s.RunsOn),
		"triggeredBy": d.triggers(&s.TriggeredBy),
	})
	return s, err
}

func (d *decoder) task(path string, n *yaml.Node) (Task, error) {
	var t Task
	err := d.object(path, n, fields{
		"name":        d.str(&t.Name),
		"description": d.str(&t.Description),
		"command":     d.str(&t.Command),
		"dependsOn":   d.strList(&t.DependsOn),
		"runsOn":      d.runsOn(&t.RunsOn),
		"triggeredBy": d.triggers(&t.TriggeredBy),
	})
	return t, err
}

func (d *decoder) runsOn(out *RunsOn) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		return d.object(path, n, fields{
			"docker": func(p string, v *yaml.Node) error {
				if isNull(v) {
					return nil
				}
				out.Docker = &Docker{}
				return d.object(p, v, fields{
					"image":       d.str(&out.Docker.Image),
					"environment": d.strList(&out.Docker.Environment),
				})
			},
			"machine": func(p string, v *yaml.Node) error {
				if isNull(v) {
					return nil
				}
				out.Machine = &Machine{}
				// Machine has no fields, so any key in it is unknown.
				return d.object(p, v, fields{})
			},
		})
	}
}

func (d *decoder) triggers(out *[]Trigger) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		var list []string
		if err := d.strList(&list)(path, n); err != nil {
			return err
		}
		for _, s := range list {
			*out = append(*out, Trigger(s))
		}
		return nil
	}
}

// str decodes a string. Null leaves it empty, as protobuf's JSON mapping
// treats null as unset. Other scalars are refused rather than converted,
// because the vendor refuses them too: a file accepted here must not be
// rejected there.
func (d *decoder) str(out *string) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		n, err := d.resolve(n)
		if err != nil {
			return err
		}
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			return typeError(path, "a string", n)
		}
		*out = n.Value
		return nil
	}
}

func (d *decoder) strList(out *[]string) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		n, err := d.resolve(n)
		if err != nil {
			return err
		}
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return typeError(path, "a list of strings", n)
		}
		list := make([]string, len(n.Content))
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			item, err := d.resolve(item)
			if err != nil {
				return err
			}
			// A null item would otherwise read as "", hiding a stray "-".
			if isNull(item) {
				return typeError(p, "a string", item)
			}
			if err := d.str(&list[i])(p, item); err != nil {
				return err
			}
		}
		*out = list
		return nil
	}
}

// object decodes a mapping whose keys must all be in known.
func (d *decoder) object(path string, n *yaml.Node, known fields) error {
	n, err := d.resolve(n)
	if err != nil {
		return err
	}
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return typeError(path, "a mapping", n)
	}
	entries, err := d.entries(path, n)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := child(path, e.key.Value)
		fn, ok := known[e.key.Value]
		if !ok {
			msg := fmt.Sprintf("unknown field (line %d)", e.key.Line)
			if s := suggest(e.key.Value, known); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			return apperr.Invalid(p, "%s", msg)
		}
		if err := fn(p, e.value); err != nil {
			return err
		}
	}
	return nil
}

// refMap decodes a mapping keyed by reference. Keys are taken as written:
// whether they are valid references is Validate's business.
func refMap[T any](d *decoder, path string, n *yaml.Node, fn func(string, *yaml.Node) (T, error)) (map[string]T, error) {
	n, err := d.resolve(n)
	if err != nil {
		return nil, err
	}
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, typeError(path, "a mapping of references", n)
	}
	entries, err := d.entries(path, n)
	if err != nil {
		return nil, err
	}
	m := make(map[string]T, len(entries))
	for _, e := range entries {
		v, err := fn(child(path, e.key.Value), e.value)
		if err != nil {
			return nil, err
		}
		m[e.key.Value] = v
	}
	return m, nil
}

type entry struct{ key, value *yaml.Node }

// entries returns a mapping's key/value pairs in document order with merge
// keys (<<: *anchor) applied: a key written in the mapping wins over a merged
// one, and an earlier merged mapping wins over a later one, as in YAML 1.1.
func (d *decoder) entries(path string, n *yaml.Node) ([]entry, error) {
	var own []entry
	var merges []*yaml.Node
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, err := d.resolve(n.Content[i])
		if err != nil {
			return nil, err
		}
		if k.Kind != yaml.ScalarNode {
			return nil, apperr.Invalid(path, "keys must be strings, found %s (line %d)", describe(k), k.Line)
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, n.Content[i+1])
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			return nil, apperr.Invalid(child(path, k.Value), "duplicate key (lines %d and %d)", prev.Line, k.Line)
		}
		seen[k.Value] = k
		own = append(own, entry{k, n.Content[i+1]})
	}
	for _, m := range merges {
		m, err := d.resolve(m)
		if err != nil {
			return nil, err
		}
		sources := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			sources = m.Content
		}
		for _, src := range sources {
			src, err := d.resolve(src)
			if err != nil {
				return nil, err
			}
			if src.Kind != yaml.MappingNode {
				return nil, apperr.Invalid(path, "a merge (<<) takes a mapping or a list of mappings, found %s (line %d)", describe(src), src.Line)
			}
			merged, err := d.entries(path, src)
			if err != nil {
				return nil, err
			}
			for _, e := range merged {
				if _, dup := seen[e.key.Value]; !dup {
					seen[e.key.Value] = e.key
					own = append(own, e)
				}
			}
		}
	}
	return own, nil
}

// resolve follows an alias to its anchor and charges the node to the budget.
func (d *decoder) resolve(n *yaml.Node) (*yaml.Node, error) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	d.budget--
	if d.budget < 0 {
		return nil, apperr.Invalid("", "too many nodes once aliases are expanded (more than %d)", maxNodes)
	}
	return n, nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func typeError(path, want string, n *yaml.Node) error {
	msg := fmt.Sprintf("must be %s, found %s (line %d)", want, describe(n), n.Line)
	if want == "a string" && n.Kind == yaml.ScalarNode && !isNull(n) {
		msg += "; quote it to use it as text"
	}
	return apperr.Invalid(path, "%s", msg)
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch tag := n.ShortTag(); tag {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!timestamp":
			return "a timestamp"
		case "!!str":
			return "a string"
		default:
			return "a value tagged " + tag
		}
	default:
		return "an unexpected node"
	}
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// child names the value under key, quoting keys that would make the path
// ambiguous (a '.' in a reference) or unreadable (spaces, empty).
func child(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest returns the known field closest to key, or "" if none is close.
// It catches the two usual slips: a typo (strat) and the proto's snake_case
// (triggered_by).
func suggest(key string, known fields) string {
	if len(key) > 64 {
		return ""
	}
	fold := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	}
	best, bestDist := "", 3
	for _, k := range sortedKeys(known) {
		if fold(k) == fold(key) {
			return k
		}
		if dist := levenshtein(key, k); dist < bestDist && dist < len(k) {
			best, bestDist = k, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
