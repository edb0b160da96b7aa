// Package ring keeps the most recent output of a terminal: a pod's
// scrollback.
package ring

import "unicode/utf8"

// TruncationMarker precedes a scrollback from which older output was dropped.
const TruncationMarker = "\r\n[runyard: earlier output was dropped; the scrollback keeps the most recent output]\r\n"

// Ring keeps the last len(buf) bytes written to it. It is not safe for
// concurrent use: its owner's mutex guards it.
type Ring struct {
	buf     []byte
	start   int // index of the oldest byte
	n       int // bytes held
	dropped bool
}

func New(size int) *Ring { return &Ring{buf: make([]byte, size)} }

func (r *Ring) Write(p []byte) {
	size := len(r.buf)
	if len(p) >= size {
		copy(r.buf, p[len(p)-size:])
		r.start, r.n = 0, size
		r.dropped = true
		return
	}
	if over := r.n + len(p) - size; over > 0 {
		r.start = (r.start + over) % size
		r.n -= over
		r.dropped = true
	}
	end := (r.start + r.n) % size
	c := copy(r.buf[end:], p)
	copy(r.buf, p[c:])
	r.n += len(p)
}

// Snapshot returns a copy of what the ring holds, with TruncationMarker in
// front when older output was dropped. A UTF-8 character cut in half by the
// drop is left out, so the marker is followed by valid text.
func (r *Ring) Snapshot() []byte {
	out := make([]byte, 0, r.n+len(TruncationMarker))
	if r.dropped {
		out = append(out, TruncationMarker...)
	}
	body := len(out)
	first := r.buf[r.start:min(r.start+r.n, len(r.buf))]
	out = append(out, first...)
	out = append(out, r.buf[:r.n-len(first)]...)
	if r.dropped {
		skip := 0
		for skip < 3 && body+skip < len(out) && !utf8.RuneStart(out[body+skip]) {
			skip++
		}
		out = append(out[:body], out[body+skip:]...)
	}
	return out
}
