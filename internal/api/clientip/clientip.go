// Package clientip decides, once per request, the address of the client
// behind it: the direct peer, or, when that peer is a proxy the operator
// trusts (runyard server --trusted-proxies), the address that proxy saw in
// X-Forwarded-For. The audit log, the sign-in rate limits and the limit of
// unauthenticated requests per address all read it from here, so a client
// can never pick its own address by sending the header to a server that
// does not sit behind a proxy.
package clientip

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Trusted is the set of proxies whose X-Forwarded-For is believed.
type Trusted struct {
	prefixes []netip.Prefix
}

// ParseTrusted reads a comma-separated list of addresses and CIDR prefixes;
// flag names the option for errors.
func ParseTrusted(flag, list string) (*Trusted, error) {
	t := &Trusted{}
	for f := range strings.SplitSeq(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			t.prefixes = append(t.prefixes, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is neither an IP address nor a CIDR prefix (e.g. 10.0.0.0/8)", flag, f)
		}
		t.prefixes = append(t.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return t, nil
}

func (t *Trusted) trusts(a netip.Addr) bool {
	if t == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Of returns the client address of r: the peer's, unless the peer is a
// trusted proxy, in which case X-Forwarded-For is read from its right end
// (the entry the nearest proxy appended) leftwards, skipping trusted
// proxies; the first address not trusted is the client. Entries a client
// wrote itself sit to the left of it and are never reached.
func (t *Trusted) Of(r *http.Request) string {
	peer := host(r.RemoteAddr)
	a, err := netip.ParseAddr(peer)
	if err != nil || !t.trusts(a) {
		return peer
	}
	client := a.Unmap().String()
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			h, err := netip.ParseAddr(host(strings.TrimSpace(parts[j])))
			if err != nil {
				// A malformed hop: what lies left of it is unknown.
				return client
			}
			client = h.Unmap().String()
			if !t.trusts(h) {
				return client
			}
		}
	}
	return client
}

// host strips a port, when there is one.
func host(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return strings.Trim(addr, "[]")
}

type key struct{}

// Middleware records the client address of every request in its context.
func (t *Trusted) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), key{}, t.Of(r))))
	})
}

// From returns the client address Middleware recorded, or the direct peer
// of r when it did not run (a handler mounted outside the server).
func From(r *http.Request) string {
	if ip, ok := r.Context().Value(key{}).(string); ok {
		return ip
	}
	return host(r.RemoteAddr)
}

// FromContext returns the client address Middleware recorded in ctx, if
// any: Connect handlers see the context, not the request.
func FromContext(ctx context.Context) (string, bool) {
	ip, ok := ctx.Value(key{}).(string)
	return ip, ok
}
