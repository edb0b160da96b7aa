package mask

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestWriter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		writes []string
		want   string
	}{
		{"Whole", []string{"hunter22"}, []string{"pw=hunter22 ok\n"}, "pw=*** ok\n"},
		{"SplitAcrossWrites", []string{"hunter22"}, []string{"pw=hun", "te", "r22!"}, "pw=***!"},
		{"SplitByteByByte", []string{"s3cr3t"}, strings.Split("a s3cr3t b", ""), "a *** b"},
		{"PrefixThatIsNot", []string{"hunter22"}, []string{"hunt", "ing\n"}, "hunting\n"},
		{"TwiceInOneWrite", []string{"abcd"}, []string{"abcdxabcd"}, "***x***"},
		{"Overlapping", []string{"abcd", "abcdef"}, []string{"xabcdefy"}, "x***y"},
		{"ShortValueIgnored", []string{"abc"}, []string{"abc"}, "abc"},
		{"HeldTailFlushed", []string{"hunter22"}, []string{"end: hunt"}, "end: hunt"},
		{"MultiLineValue", Values("line-one-x\nline-two-y"), []string{"a line-two-y b"}, "a *** b"},
		{"NoValues", nil, []string{"plain"}, "plain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			w := NewWriter(&out, Values(tc.values...))
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestWriter_RandomSplits writes text full of secrets cut at random places:
// no secret may ever reach the output, and everything else must.
func TestWriter_RandomSplits(t *testing.T) {
	secrets := []string{"ghp_0123456789abcdef", "p@ss w0rd", "AKIAXYZXYZ"}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		var in, want strings.Builder
		for range 20 {
			filler := strings.Repeat("x", r.IntN(12))
			s := secrets[r.IntN(len(secrets))]
			in.WriteString(filler + s)
			want.WriteString(filler + Replacement)
		}
		text := in.String()
		var out bytes.Buffer
		w := NewWriter(&out, Values(secrets...))
		for len(text) > 0 {
			n := 1 + r.IntN(min(len(text), 9))
			if _, err := w.Write([]byte(text[:n])); err != nil {
				t.Fatal(err)
			}
			text = text[n:]
		}
		_ = w.Flush()
		if out.String() != want.String() {
			t.Fatalf("run %d: got %q, want %q", i, out.String(), want.String())
		}
	}
}
