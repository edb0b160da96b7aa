// Package paging turns the API's page tokens and sizes into keyset cursors.
// Lists are ordered by an object's insertion sequence, so a page boundary never
// moves when objects are inserted: new objects appear after the last page.
package paging

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/runyard/runyard/internal/apperr"
)

const (
	DefaultSize = 25
	MaxSize     = 100
)

// Page is a validated request for one page.
type Page struct {
	// After is the sequence number of the last object of the previous page;
	// zero for the first page.
	After int64
	// Limit is the number of objects to return.
	Limit int
}

const tokenVersion = "v1:"

// Parse validates a page token and size. A size above MaxSize is lowered to
// MaxSize, as the vendor's API does; zero means DefaultSize.
func Parse(token string, size int32) (Page, error) {
	p := Page{Limit: DefaultSize}
	switch {
	case size < 0:
		return Page{}, apperr.Invalid("pagination.pageSize", "must not be negative, got %d", size)
	case size > MaxSize:
		p.Limit = MaxSize
	case size > 0:
		p.Limit = int(size)
	}
	if token == "" {
		return p, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || !strings.HasPrefix(string(raw), tokenVersion) {
		return Page{}, apperr.Invalid("pagination.token", "not a token returned by this API")
	}
	after, err := strconv.ParseInt(strings.TrimPrefix(string(raw), tokenVersion), 10, 64)
	if err != nil || after <= 0 {
		return Page{}, apperr.Invalid("pagination.token", "not a token returned by this API")
	}
	p.After = after
	return p, nil
}

// Token returns the opaque token for the page after the object with sequence
// last.
func Token(last int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenVersion + strconv.FormatInt(last, 10)))
}

// Trim cuts a result fetched with Limit+1 rows down to Limit and returns the
// next page token: empty when this was the last page. seq returns an item's
// sequence number.
func Trim[T any](p Page, items []T, seq func(T) int64) ([]T, string) {
	if len(items) <= p.Limit {
		return items, ""
	}
	items = items[:p.Limit]
	return items, Token(seq(items[len(items)-1]))
}
