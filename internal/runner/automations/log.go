package automations

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// logTruncated marks where a run's log reached its cap.
const logTruncated = "\n[runyard: this log reached its cap of %d bytes; later output of this run was dropped]\n"

// runLog is the log of one service run or execution step: a file under the
// executor's directory, written up to a cap. Followers wait on changed for
// more.
type runLog struct {
	path string
	cap  int64

	mu      sync.Mutex
	f       *os.File
	size    int64
	full    bool
	done    bool
	changed chan struct{} // closed and replaced on every write and at the end
}

func createLog(path string, cap int64) (*runLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("create log: %w", err)
	}
	return &runLog{path: path, cap: cap, f: f, size: st.Size(), changed: make(chan struct{})}, nil
}

// Write appends p up to the cap; what does not fit is dropped behind a
// marker. It never fails the command writing: a log is no reason to stop
// a service. A process holder may append to the same file: the size is
// read from the file.
func (l *runLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.full || l.f == nil {
		return len(p), nil
	}
	if st, err := l.f.Stat(); err == nil {
		l.size = st.Size()
	}
	b := p
	if room := l.cap - l.size; int64(len(b)) > room {
		b = append(b[:max(room, 0):max(room, 0)], fmt.Sprintf(logTruncated, l.cap)...)
		l.full = true
	}
	n, _ := l.f.Write(b)
	l.size += int64(n)
	l.notifyLocked()
	return len(p), nil
}

// grew records that a process holder wrote the file up to size.
func (l *runLog) grew(size int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if size > l.size {
		l.size = size
		l.notifyLocked()
	}
}

func (l *runLog) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// line writes a message of the runner itself into the log.
func (l *runLog) line(format string, args ...any) {
	fmt.Fprintf(l, "[runyard] "+format+"\n", args...)
}

// close ends the log: followers read to its end and stop.
func (l *runLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	l.done = true
	l.notifyLocked()
}

func (l *runLog) state() (size int64, done bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size, l.done, l.changed
}

// copyChunk is the most copyLog reads and hands to w at once: each write
// becomes a message to the control plane and a write to the follower, whose
// cost is mostly per message, so a log that is read faster than it is
// written goes in chunks of this size rather than the 32 KiB of io.Copy.
const copyChunk = 256 << 10

// followLinger is how long a follower rests after a copy before it takes
// what was written meanwhile. A command writing fast grows the log in the
// small writes of its pipe; copying each of them as it comes costs the
// runner and the control plane a message and a system call per 32 KiB, which
// on a busy machine took the CPU the writer needed (the writer ran at the
// follower's pace). Resting lets writes gather into larger copies; a log
// that was quiet for longer is copied at once, so a line printed now and
// then shows without delay.
const followLinger = 2 * time.Millisecond

// copyLog writes the log file at path to w; with live set (the run still
// writes it) and follow, it goes on until the run ends or ctx ends.
func copyLog(ctx context.Context, path string, live *runLog, follow bool, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var off int64
	var buf []byte
	var copied time.Time // the last copy of a followed log
	for {
		var size int64
		var done bool
		var changed <-chan struct{}
		if live != nil {
			size, done, changed = live.state()
			// A holder writes the file; its word of the size may come
			// after the bytes.
			if st, err := f.Stat(); err == nil {
				size = max(size, st.Size())
			}
		} else {
			st, err := f.Stat()
			if err != nil {
				return err
			}
			size, done = st.Size(), true
		}
		if rf, ok := w.(io.ReaderFrom); ok && size > off {
			// The writer takes the file itself: a log's connection of its
			// own sends it with sendfile(2), which reads from the file's
			// offset (this loop reads nothing else from it).
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return err
			}
			n, err := rf.ReadFrom(io.LimitReader(f, size-off))
			off += n
			if err != nil {
				return err
			}
			copied = time.Now()
		} else if size > off {
			if buf == nil {
				// A log read once needs no more than its size.
				n := int64(copyChunk)
				if !follow {
					n = min(size-off, n)
				}
				buf = make([]byte, n)
			}
			n, err := io.CopyBuffer(w, io.NewSectionReader(f, off, size-off), buf)
			off += n
			if err != nil {
				return err
			}
			copied = time.Now()
		}
		if done || !follow {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
		if rest := followLinger - time.Since(copied); rest > 0 {
			t := time.NewTimer(rest)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil
			}
		}
	}
}
