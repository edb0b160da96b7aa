package holder

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Frames on a holder's socket: one type byte, a big-endian uint32 length,
// the payload. The holder and the daemon may be different builds (a daemon
// upgraded under running holders), so frames are only ever added.
const (
	// Holder to daemon.
	frameHello  = 'h' // JSON hello
	frameOutput = 'o' // terminal output (the scrollback first, after hello)
	frameGrew   = 'g' // 8 bytes: the log file's size after a write
	frameExit   = 'x' // JSON Exit; the holder closes the connection after it, except a log's holder on the connection it was started with, which waits there for frameRecycle
	frameFailed = 'f' // a recycled holder could not start its next command: why; the holder ends

	// Daemon to holder.
	frameInput  = 'i' // bytes typed into the terminal
	frameResize = 'r' // 2+2 bytes: cols, rows
	frameSignal = 's' // 1 byte: a signal for the command's session
	// frameRecycle: JSON Spec, the next command for a log's holder whose
	// command ended, on the connection it was started with; it answers
	// with hello (started) or frameFailed.
	frameRecycle = 'c'
)

// maxFrame bounds a frame's payload: a terminal's scrollback is the
// largest.
const maxFrame = 64 << 20

// hello is the first frame a holder sends on a connection.
type hello struct {
	Mode   Mode   `json:"mode"`
	Record Record `json:"record"`
	// LogSize is the log file's size (ModeLog).
	LogSize int64 `json:"logSize,omitempty"`
}

func writeFrame(w io.Writer, typ byte, payload []byte) error {
	var h [5]byte
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:], uint32(len(payload)))
	// One write: frames from several goroutines are serialized by the
	// caller, and a single write keeps a frame whole on a socket.
	b := make([]byte, 0, 5+len(payload))
	b = append(append(b, h[:]...), payload...)
	_, err := w.Write(b)
	return err
}

func readFrame(r io.Reader) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("holder frame of %d bytes: too large", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, err
	}
	return h[0], b, nil
}
