package testutil

import (
	"slices"
	"testing"
)

// TestShapeProblems checks the checker: a passing seed test means nothing if
// it cannot fail.
func TestShapeProblems(t *testing.T) {
	seed := map[string]any{"a": "x", "last_heartbeat_at": "t", "b": map[string]any{"c": 1.0}, "l": []any{map[string]any{"k": "v"}}}
	exact := Shape{Exact: true, Nullable: []string{"last_heartbeat_at"}}
	full := func(over map[string]any) map[string]any {
		m := map[string]any{"a": "x", "last_heartbeat_at": "t", "b": map[string]any{"c": 2.0}, "l": []any{}}
		for k, v := range over {
			if v == "<delete>" {
				delete(m, k)
				continue
			}
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name  string
		got   map[string]any
		shape Shape
		want  []string
	}{
		{"OKSubset", map[string]any{"b": map[string]any{}}, Shape{}, nil},
		{"OKSame", seed, exact, nil},
		{"OKNullable", full(map[string]any{"last_heartbeat_at": nil}), exact, nil},
		{"ErrNullNotAllowed", full(map[string]any{"a": nil}), exact, []string{".a: ours is a null, the seed's a string"}},
		{"ErrNullWithoutNullable", full(map[string]any{"last_heartbeat_at": nil}), Shape{}, []string{".last_heartbeat_at: ours is a null, the seed's a string"}},
		{"ErrMissingKey", full(map[string]any{"a": "<delete>"}), exact, []string{".a: missing from ours"}},
		{"ErrExtraKey", map[string]any{"z": true}, Shape{}, []string{".z: the seed example has no such key"}},
		{"ErrType", map[string]any{"a": 1.0}, Shape{}, []string{".a: ours is a number, the seed's a string"}},
		{"ErrNested", map[string]any{"b": map[string]any{"c": "1"}}, Shape{}, []string{".b.c: ours is a string, the seed's a number"}},
		{"ErrArrayElement", map[string]any{"l": []any{map[string]any{"k": false}}}, Shape{}, []string{".l[0].k: ours is a bool, the seed's a string"}},
		{"ErrArrayElementMissingKey", full(map[string]any{"l": []any{map[string]any{}}}), exact, []string{".l[0].k: missing from ours"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ShapeProblems(tt.got, seed, tt.shape); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
