package replicaproxy

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestRelayed relays a request through a Proxy to another "replica" and
// checks that only the header the relay signed, for that request and
// recently, counts as relayed: a client may set the header itself, but then
// the replica it reaches records its call in the audit log as any other.
func TestRelayed(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	got := make(chan *http.Request, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Clone(context.Background())
	}))
	defer backend.Close()
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	p := &Proxy{Self: "http://self", Key: key, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now },
		Find: func(context.Context, string, string) (string, error) { return backend.URL, nil }}

	in := httptest.NewRequest(http.MethodGet, "/api/v1/orgs/default/pods/k1/terminal?readonly=false", nil)
	if !p.Relay(httptest.NewRecorder(), in, &ElsewhereError{OrgID: "o", RunnerID: "r"}) {
		t.Fatal("Relay did not relay")
	}
	relayed := <-got
	if !p.Relayed(relayed) {
		t.Fatalf("the relayed request (header %q) is not recognised", relayed.Header.Get(Header))
	}

	other := &Proxy{Key: []byte("another key of the same length...")}
	late := &Proxy{Key: key, Now: func() time.Time { return now.Add(3 * time.Minute) }}
	tests := []struct {
		name   string
		p      *Proxy
		change func(r *http.Request)
	}{
		{"a client's own header", p, func(r *http.Request) { r.Header.Set(Header, "1") }},
		{"no header", p, func(r *http.Request) { r.Header.Del(Header) }},
		{"another path", p, func(r *http.Request) { r.URL.Path = "/api/v1/orgs/default/pods/k2/terminal" }},
		{"another query", p, func(r *http.Request) { r.URL.RawQuery = "readonly=true" }},
		{"another method", p, func(r *http.Request) { r.Method = http.MethodPost }},
		{"another key", other, func(*http.Request) {}},
		{"too old", late, func(*http.Request) {}},
		{"no key here", &Proxy{}, func(*http.Request) {}},
		{"no proxy", nil, func(*http.Request) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := relayed.Clone(context.Background())
			tt.change(r)
			if tt.p.Relayed(r) {
				t.Errorf("Relayed accepted %s %s with header %q", r.Method, r.URL.RequestURI(), r.Header.Get(Header))
			}
		})
	}
}
