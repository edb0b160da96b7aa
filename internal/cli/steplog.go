package cli

import (
	"bytes"
	"io"
	"strings"
)

// stepHeader starts the line the runner writes before each step's output
// in an execution's log: "=== step ID ===".
const stepHeader = "=== step "

// maxHeader bounds a header line; a longer line is output, not a header.
const maxHeader = 256

// stepHeaders rewrites the header lines of an execution's log to the
// steps' names ("=== task build ==="), and lets everything else through as
// it comes: only the start of a line that may be a header waits for its
// end, so a followed log shows a prompt without a newline at once.
type stepHeaders struct {
	w     io.Writer
	names map[string]string // step ID -> "task build"
	held  []byte
	// mid is true inside a line that is not a header.
	mid bool
}

func (h *stepHeaders) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if h.mid {
			if i < 0 {
				_, err := h.w.Write(p)
				return n, err
			}
			if _, err := h.w.Write(p[:i+1]); err != nil {
				return n, err
			}
			h.mid, p = false, p[i+1:]
			continue
		}
		if i < 0 {
			h.held = append(h.held, p...)
			p = nil
		} else {
			h.held = append(h.held, p[:i+1]...)
			p = p[i+1:]
		}
		if i >= 0 {
			if err := h.flushLine(); err != nil {
				return n, err
			}
			continue
		}
		if !h.mayBeHeader() {
			if _, err := h.w.Write(h.held); err != nil {
				return n, err
			}
			h.held, h.mid = nil, true
		}
	}
	return n, nil
}

// mayBeHeader reports whether the held start of a line can still become a
// header.
func (h *stepHeaders) mayBeHeader() bool {
	s := string(h.held)
	if len(s) > maxHeader {
		return false
	}
	if len(s) < len(stepHeader) {
		return strings.HasPrefix(stepHeader, s)
	}
	return strings.HasPrefix(s, stepHeader)
}

// flushLine writes the held line, renamed when it is a header.
func (h *stepHeaders) flushLine() error {
	line := string(h.held)
	h.held = nil
	if id, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), stepHeader); ok && strings.HasSuffix(id, " ===") {
		if name, ok := h.names[strings.TrimSuffix(id, " ===")]; ok {
			line = "=== " + name + " ===\n"
		}
	}
	_, err := io.WriteString(h.w, line)
	return err
}

// Flush writes what is held of an unfinished line.
func (h *stepHeaders) Flush() error {
	if len(h.held) == 0 {
		return nil
	}
	_, err := h.w.Write(h.held)
	h.held = nil
	return err
}
