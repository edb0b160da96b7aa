package testutil

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Shape says how strictly a response must match a seed document's example.
type Shape struct {
	// Exact requires every key of the example too. Without it a response may
	// have fewer keys (protojson omits zero values), never others.
	Exact bool
	// Nullable names keys that may be null where the example has a value
	// (a runner that never connected has no heartbeat).
	Nullable []string
}

// JSONType names the JSON type of a value decoded into any.
func JSONType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return reflect.TypeOf(v).String()
}

// ShapeProblems lists how got (decoded JSON) differs in shape from a seed
// example: a key the example lacks, a value of another JSON type, and with
// Exact a key got lacks. Array elements are compared with the example's
// first element.
func ShapeProblems(got, seed any, s Shape) []string {
	out := s.problems("", got, seed)
	slices.Sort(out)
	return out
}

func (s Shape) problems(path string, got, seed any) []string {
	gt, st := JSONType(got), JSONType(seed)
	if gt == "null" && slices.Contains(s.Nullable, path[strings.LastIndex(path, ".")+1:]) {
		return nil
	}
	if gt != st {
		return []string{fmt.Sprintf("%s: ours is a %s, the seed's a %s", path, gt, st)}
	}
	var out []string
	switch g := got.(type) {
	case map[string]any:
		e := seed.(map[string]any)
		for k, v := range g {
			ev, ok := e[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: the seed example has no such key", path, k))
				continue
			}
			out = append(out, s.problems(path+"."+k, v, ev)...)
		}
		if s.Exact {
			for k := range e {
				if _, ok := g[k]; !ok {
					out = append(out, fmt.Sprintf("%s.%s: missing from ours", path, k))
				}
			}
		}
	case []any:
		e := seed.([]any)
		for i, v := range g {
			if len(e) == 0 {
				return append(out, path+": the seed example's array is empty")
			}
			out = append(out, s.problems(path+"["+strconv.Itoa(i)+"]", v, e[0])...)
		}
	}
	return out
}

// CheckShape reports every shape problem of got as a test error.
func CheckShape(tb testing.TB, what string, got, seed any, s Shape) {
	tb.Helper()
	for _, p := range ShapeProblems(got, seed, s) {
		tb.Errorf("%s: %s", what, p)
	}
}
