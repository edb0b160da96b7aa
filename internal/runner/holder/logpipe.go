package holder

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A ModeLog command's output pipe is read with blocking system calls, not
// through Go's poller: a pipe registered with epoll wakes its reader on
// every write of the command (4 KiB at a time for coreutils), even while
// the reader rests to let a fast writer's output gather (see gather).
// Outside poll(2), nobody waits on the pipe, and a write wakes no one.
//
// While a command writes fast (gatherStart bytes within gatherWindow), its
// pipe is enlarged to gatherPipe and read after a rest of gatherLinger, in
// one read of up to gatherPipe: a log written at hundreds of MB/s costs the
// holder one read, one file write and one size frame to the runner per
// millisecond instead of one per 4 KiB write, and the runner and a follower
// are woken as often. When the output slows (under gatherQuiet bytes after
// a rest) the pipe gets its own size back. A pipe that cannot be enlarged
// (the user's pipe quota) is read as before, without rests: a rest with a
// 64 KiB pipe would hold a fast writer up.
const (
	gatherWindow = 5 * time.Millisecond
	gatherStart  = 256 << 10
	gatherPipe   = 1 << 20
	gatherLinger = time.Millisecond
	gatherQuiet  = 16 << 10
)

// logPipe is the read end of a ModeLog command's output.
type logPipe struct {
	fd int
	// stop is a pipe whose read end poll watches beside the output: Close
	// writes to it, so that a Read waiting for a command's stray process
	// returns.
	stopR, stopW int
	stopOnce     sync.Once

	// gather's state: see the constants above.
	normal      int // the pipe's own size
	big         bool
	rested      bool
	windowStart time.Time
	windowBytes int
}

// newLogPipe returns a pipe: the read end for the holder, the write end for
// the command (stdout and stderr).
func newLogPipe() (*logPipe, *os.File, error) {
	var p, s [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("create the output pipe: %w", err)
	}
	if err := syscall.Pipe2(s[:], syscall.O_CLOEXEC); err != nil {
		syscall.Close(p[0])
		syscall.Close(p[1])
		return nil, nil, fmt.Errorf("create the output pipe: %w", err)
	}
	lp := &logPipe{fd: p[0], stopR: s[0], stopW: s[1]}
	if n, err := unix.FcntlInt(uintptr(p[0]), unix.F_GETPIPE_SZ, 0); err == nil {
		lp.normal = n
	}
	return lp, os.NewFile(uintptr(p[1]), "output"), nil
}

// Read waits for output and reads what there is, up to len(b); io.EOF once
// every writer closed the pipe, os.ErrClosed after Close.
func (p *logPipe) Read(b []byte) (int, error) {
	fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}, {Fd: int32(p.stopR), Events: unix.POLLIN}}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return 0, fmt.Errorf("wait for output: %w", err)
		}
		if fds[1].Revents != 0 {
			return 0, os.ErrClosed
		}
		if fds[0].Revents == 0 {
			continue
		}
		n, err := syscall.Read(p.fd, b)
		switch {
		case errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN):
			continue
		case err != nil:
			return 0, fmt.Errorf("read output: %w", err)
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Close makes a waiting or later Read return; the descriptors are released
// by release, once nothing reads any more.
func (p *logPipe) Close() error {
	p.stopOnce.Do(func() { _, _ = syscall.Write(p.stopW, []byte{0}) })
	return nil
}

func (p *logPipe) release() {
	syscall.Close(p.fd)
	syscall.Close(p.stopR)
	syscall.Close(p.stopW)
}

// gather is called after each read of n bytes: it decides whether the
// command writes fast enough for its output to be gathered, rests before
// the next read when it does, and returns how large that read may be.
func (p *logPipe) gather(n int) int {
	now := time.Now()
	if !p.big {
		if now.Sub(p.windowStart) > gatherWindow {
			p.windowStart, p.windowBytes = now, 0
		}
		p.windowBytes += n
		if p.windowBytes < gatherStart || p.normal <= 0 || !p.resize(gatherPipe) {
			return readBuffer
		}
		p.big, p.rested = true, false
	} else if p.rested && n < gatherQuiet {
		// Less than gatherQuiet in a rest: the command slowed down. A pipe
		// holding more than its own size cannot shrink yet.
		if p.resize(p.normal) {
			p.big, p.windowStart, p.windowBytes = false, now, 0
			return readBuffer
		}
	}
	// A read that took half the pipe or more is followed at once: the
	// writer may fill it before a rest ends.
	p.rested = n < gatherPipe/2
	if p.rested {
		time.Sleep(gatherLinger)
	}
	return gatherPipe
}

func (p *logPipe) resize(size int) bool {
	_, err := unix.FcntlInt(uintptr(p.fd), unix.F_SETPIPE_SZ, size)
	return err == nil
}
