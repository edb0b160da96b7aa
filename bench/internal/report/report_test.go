package report

import (
	"strings"
	"testing"
)

func TestEmit_ParseRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		fig    Figure
		target *Target
		want   string // the target as printed, "" for none
		met    bool
	}{
		{"AtMostMet", Figure{Value: 40, Unit: "KiB"}, ptr(AtMost(50)), "≤ 50 KiB", true},
		{"AtMostMissed", Figure{Value: 107, Unit: "KiB"}, ptr(AtMost(50)), "≤ 50 KiB", false},
		{"AtLeast", Figure{Value: 3000, Unit: "pods/s"}, ptr(AtLeast(3000)), "≥ 3000 pods/s", true},
		{"RatioAtLeastMissed", Figure{Value: 37, Baseline: 100, Unit: "MB/s"}, ptr(RatioAtLeast(0.6)), "≥ 0.6× baseline", false},
		{"RatioAtMost", Figure{Value: 150, Baseline: 100, Unit: "µs"}, ptr(RatioAtMost(2)), "≤ 2× baseline", true},
		{"RatioWithoutBaseline", Figure{Value: 1, Unit: "µs"}, ptr(RatioAtMost(2)), "≤ 2× baseline", false},
		{"NoTarget", Figure{Value: 1, Unit: "ms"}, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			mu.Lock()
			prev := out
			out = &b
			mu.Unlock()
			t.Cleanup(func() { mu.Lock(); out = prev; mu.Unlock() })
			tt.fig.Bench, tt.fig.Name = "b", "a <figure> & more"
			Emit(tt.fig, tt.target)
			line := strings.TrimSuffix(b.String(), "\n")
			if strings.Contains(line, "\n") {
				t.Fatalf("Emit printed more than one line: %q", b.String())
			}
			f, ok, err := Parse(line)
			if !ok || err != nil {
				t.Fatalf("Parse(%q) = ok %v, err %v", line, ok, err)
			}
			if f.Name != tt.fig.Name || f.Value != tt.fig.Value || f.Baseline != tt.fig.Baseline {
				t.Errorf("parsed %+v, emitted %+v", f, tt.fig)
			}
			if got := f.Target; got != tt.want {
				t.Errorf("target %q, want %q", got, tt.want)
			}
			if tt.target == nil {
				if f.Met != nil {
					t.Errorf("met %v without a target", *f.Met)
				}
			} else if f.Met == nil || *f.Met != tt.met {
				t.Errorf("met %v, want %v", f.Met, tt.met)
			}
		})
	}
}

func TestParse_OtherLines(t *testing.T) {
	for _, l := range []string{"", "run 1: follower 300 MB/s", "BENCH-FIGURE"} {
		if _, ok, err := Parse(l); ok || err != nil {
			t.Errorf("Parse(%q) = ok %v, err %v; want an other line", l, ok, err)
		}
	}
	if _, ok, err := Parse(Prefix + "{not json"); !ok || err == nil {
		t.Errorf("a broken figure line: ok %v, err %v; want an error", ok, err)
	}
}

func ptr[T any](v T) *T { return &v }
