package paging

import (
	"testing"

	"github.com/runyard/runyard/internal/apperr"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		token string
		size  int32
		want  Page
		field string // non-empty: want CodeInvalid naming this field
	}{
		{name: "Default", want: Page{Limit: DefaultSize}},
		{name: "Size", size: 7, want: Page{Limit: 7}},
		{name: "MaxSize", size: MaxSize, want: Page{Limit: MaxSize}},
		{name: "ClampedSize", size: 5000, want: Page{Limit: MaxSize}},
		{name: "Token", token: Token(42), size: 3, want: Page{After: 42, Limit: 3}},
		{name: "ErrNegativeSize", size: -1, field: "pagination.pageSize"},
		{name: "ErrGarbageToken", token: "%%%", field: "pagination.token"},
		{name: "ErrForeignToken", token: "djI6MTA", field: "pagination.token"},
		{name: "ErrZeroToken", token: Token(0), field: "pagination.token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.token, tt.size)
			if tt.field != "" {
				e := apperr.As(err)
				if err == nil || e.Code != apperr.CodeInvalid || e.Field != tt.field {
					t.Fatalf("Parse(%q, %d) error = %v, want invalid %s", tt.token, tt.size, err, tt.field)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse(%q, %d) = %+v, %v; want %+v", tt.token, tt.size, got, err, tt.want)
			}
		})
	}
}

func TestTrim(t *testing.T) {
	seq := func(v int64) int64 { return v }
	p := Page{Limit: 2}
	items, next := Trim(p, []int64{5, 6, 9}, seq)
	if len(items) != 2 || next != Token(6) {
		t.Fatalf("Trim with one extra row = %v, %q; want [5 6], token after 6", items, next)
	}
	items, next = Trim(p, []int64{5, 6}, seq)
	if len(items) != 2 || next != "" {
		t.Fatalf("Trim on the last page = %v, %q; want no next token", items, next)
	}
}
