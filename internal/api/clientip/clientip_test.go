package clientip

import (
	"net/http"
	"testing"
)

func TestOf(t *testing.T) {
	trusted, err := ParseTrusted("--trusted-proxies", "10.0.0.0/8, 192.168.1.1,::1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		trusted *Trusted
		peer    string
		xff     []string
		want    string
	}{
		{"no proxies trusted: the header is ignored", nil, "203.0.113.9:4000", []string{"1.2.3.4"}, "203.0.113.9"},
		{"untrusted peer: the header is ignored", trusted, "203.0.113.9:4000", []string{"1.2.3.4"}, "203.0.113.9"},
		{"trusted peer, one hop", trusted, "10.1.2.3:4000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"a client's own entry left of the proxy's is not believed", trusted, "10.1.2.3:4000", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7"},
		{"a chain of trusted proxies is skipped", trusted, "10.1.2.3:4000", []string{"198.51.100.7, 192.168.1.1", "10.9.9.9"}, "198.51.100.7"},
		{"trusted peer without the header", trusted, "10.1.2.3:4000", nil, "10.1.2.3"},
		{"a malformed hop stops the walk", trusted, "10.1.2.3:4000", []string{"1.2.3.4, garbage"}, "10.1.2.3"},
		{"IPv6 loopback proxy", trusted, "[::1]:4000", []string{"2001:db8::1"}, "2001:db8::1"},
		{"only trusted hops: the leftmost one", trusted, "10.1.2.3:4000", []string{"10.0.0.1"}, "10.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://x/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tc.trusted.Of(r); got != tc.want {
				t.Errorf("Of = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseTrusted_Bad(t *testing.T) {
	for _, in := range []string{"nonsense", "10.0.0.0/99", "1.2.3"} {
		if _, err := ParseTrusted("--trusted-proxies", in); err == nil {
			t.Errorf("ParseTrusted(%q) accepted it", in)
		} else if got := err.Error(); got[:len("--trusted-proxies")] != "--trusted-proxies" {
			t.Errorf("ParseTrusted(%q) = %q, want it to name the flag", in, got)
		}
	}
}
