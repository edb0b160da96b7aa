// Package mask hides secret values in the output of the commands a runner
// runs: every occurrence of a secret becomes "***" before it reaches a log,
// a pod's scrollback or a terminal, also when a value is split across
// writes (the way GitHub Actions masks secrets in job logs).
package mask

import (
	"bytes"
	"io"
	"sort"
	"strings"
	"sync"
)

// Replacement is what a secret value becomes.
const Replacement = "***"

// MinLen is the shortest value that is masked: shorter ones would mask
// ordinary output ("a", "on") and protect nothing.
const MinLen = 4

// Values returns the values to mask for the secrets vs: each value, and
// each line of a multi-line value on its own (a tool may print one line of
// a key), leaving out those shorter than MinLen. Longer values come first,
// so a value that contains another is masked whole.
func Values(vs ...string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(v string) {
		v = strings.TrimRight(v, "\r")
		if len(v) >= MinLen && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	for _, v := range vs {
		add(v)
		if strings.ContainsAny(v, "\n") {
			for _, line := range strings.Split(v, "\n") {
				add(strings.TrimSpace(line))
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// Writer masks what is written to it and passes the result to the writer
// underneath. Bytes that may be the start of a secret are held back until
// the next write tells (or Flush); no secret ever passes through unmasked,
// however the output is split.
type Writer struct {
	w      io.Writer
	values [][]byte

	mu   sync.Mutex
	held []byte
}

// NewWriter returns a Writer masking values (see Values) on w. With no
// values it still works, holding nothing back.
func NewWriter(w io.Writer, values []string) *Writer {
	m := &Writer{w: w}
	for _, v := range values {
		if len(v) >= MinLen {
			m.values = append(m.values, []byte(v))
		}
	}
	return m
}

// Write masks p (with what was held back before it) and writes all it can
// be sure of. It reports len(p) when the writer underneath took everything.
func (m *Writer) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.values) == 0 {
		return m.w.Write(p)
	}
	buf := append(m.held, p...)
	m.held = nil
	out, rest := m.mask(buf)
	m.held = append([]byte(nil), rest...)
	if len(out) > 0 {
		if _, err := m.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Pending reports whether bytes are held back.
func (m *Writer) Pending() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.held) > 0
}

// Flush writes what is held back as it is: the stream ended (or paused
// long enough), so it is not the start of a secret after all.
func (m *Writer) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.held) == 0 {
		return nil
	}
	b := m.held
	m.held = nil
	_, err := m.w.Write(b)
	return err
}

// mask replaces every whole value in buf and returns the result up to the
// longest tail of buf that could still grow into a value, and that tail.
func (m *Writer) mask(buf []byte) (out, rest []byte) {
	var b bytes.Buffer
	for {
		at, n := -1, 0
		for _, v := range m.values {
			if i := bytes.Index(buf, v); i >= 0 && (at < 0 || i < at || (i == at && len(v) > n)) {
				at, n = i, len(v)
			}
		}
		if at < 0 {
			break
		}
		b.Write(buf[:at])
		b.WriteString(Replacement)
		buf = buf[at+n:]
	}
	keep := 0
	for _, v := range m.values {
		for k := min(len(v)-1, len(buf)); k > keep; k-- {
			if bytes.Equal(buf[len(buf)-k:], v[:k]) {
				keep = k
				break
			}
		}
	}
	b.Write(buf[:len(buf)-keep])
	return b.Bytes(), buf[len(buf)-keep:]
}
