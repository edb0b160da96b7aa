package holder

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/creack/pty"

	"github.com/runyard/runyard/internal/runner/mask"
	"github.com/runyard/runyard/internal/runner/proc"
	"github.com/runyard/runyard/internal/runner/ring"
	"github.com/runyard/runyard/internal/runner/statefile"
)

// Name is argv[0] of a holder process: what ps shows, and what tells this
// binary to be a holder.
const Name = "runyard-holder"

// Every binary that links this package (runyard itself, and the test
// binaries that run a runner) becomes a holder when started under Name,
// before its main or its tests run: this is how the daemon starts one
// without a separate executable (the re-exec pattern of containerd and
// Docker).
func init() {
	if len(os.Args) > 0 && os.Args[0] == Name {
		os.Exit(serve())
	}
}

const (
	// drainTimeout bounds the wait for the last output once the command's
	// session is gone: only a process that left the session but kept the
	// output open holds it up.
	drainTimeout = 5 * time.Second
	// flushAfter is how long a terminal's output that may be the start of
	// a secret is held back before it is shown as it is.
	flushAfter = 100 * time.Millisecond
	// clientBuffer is how many frames a daemon may fall behind before it
	// is disconnected (it reconnects and gets the scrollback again).
	clientBuffer = 1024
	// readBuffer takes what a full pipe holds (64 KiB) in one read: a
	// command writing fast costs one file write and one size frame per
	// read.
	readBuffer = 64 << 10
)

// holderProc is the state of the holder process.
type holderProc struct {
	spec Spec
	rec  Record

	mu      sync.Mutex
	clients map[*client]struct{}
	scroll  *ring.Ring // ModeTerminal
	logSize int64      // ModeLog: bytes in the log file
	exit    *Exit      // set once the command ended and exit.json is written
	ptmx    *os.File   // ModeTerminal
	// recycle receives the next command's spec from the first daemon's
	// connection once the command ended, or nil when that daemon closed
	// it (run).
	recycle chan []byte
}

type client struct {
	conn net.Conn
	out  chan frame
	done chan struct{} // closed once write returned
	// first: the connection the holder was started with. keep: its
	// command ended and it stays open for a recycle (finish); write does
	// not close it.
	first bool
	keep  atomic.Bool
}

type frame struct {
	typ     byte
	payload []byte
}

// serve is the holder's main: it returns the process's exit code.
func serve() int {
	// The command's parent-death signal fires when the thread that forked
	// it ends, not the process: keep the main goroutine on one thread.
	runtime.LockOSThread()
	// The holder leads its own session, so no terminal signals it; a
	// SIGTERM meant for a whole service unit must not end it either. Caught
	// (not ignored) signals are reset for the command at exec.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT)
	// The command must not inherit the pipes to the daemon: the daemon
	// waits for the status pipe to close.
	for fd := 3; fd <= 5; fd++ {
		syscall.CloseOnExec(fd)
	}
	specIn, status := os.NewFile(3, "spec"), os.NewFile(4, "status")
	// Processes the command leaves behind are handed to the holder, not to
	// whoever reaps for the runner: the holder kills and reaps them.
	const prSetChildSubreaper = 36
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		fmt.Fprintf(os.Stderr, "become a child subreaper: %v\n", e)
	}
	st := pipeStatus{status}
	// The connection of the daemon that started this holder (a socket
	// pair): it gets the hello before "ok".
	first, err := daemonConn()
	if err != nil {
		return st.fail(err)
	}
	// A spare holder waits here, started ahead of need, until the daemon
	// hands it a command (or ends, closing the pipe).
	var spec Spec
	if err := json.NewDecoder(specIn).Decode(&spec); err != nil {
		return st.fail(fmt.Errorf("read the holder spec: %w", err))
	}
	specIn.Close()
	var started starter = st
	for {
		next, code := run(spec, first, started)
		if next == nil {
			return code
		}
		// Recycled: the daemon that started this holder hands it another
		// command on the same connection (frameRecycle), and hears of its
		// start there.
		spec, started = *next, frameStatus{first}
	}
}

// starter tells the daemon that handed the holder its command whether it
// started: on the status pipe the first time, on the connection after a
// recycle.
type starter interface {
	ok()
	fail(error) int
}

type pipeStatus struct{ f *os.File }

func (p pipeStatus) ok() {
	if _, err := p.f.WriteString("ok"); err != nil {
		// The daemon died before it heard of the start: the command runs
		// on, recorded in holder.json for the next one.
		fmt.Fprintf(os.Stderr, "tell the daemon the command started: %v\n", err)
	}
	p.f.Close()
}

func (p pipeStatus) fail(err error) int {
	fmt.Fprintf(p.f, "error: %v", err)
	p.f.Close()
	return 1
}

// frameStatus: a recycled holder's hello (greetFirst) is its "ok"; a
// failure is a frameFailed, after which the holder ends.
type frameStatus struct{ conn net.Conn }

func (frameStatus) ok() {}

func (f frameStatus) fail(err error) int {
	_ = writeFrame(f.conn, frameFailed, []byte(err.Error()))
	return 1
}

// recycleWait bounds how long a holder whose command ended waits for
// another from the daemon that started it (the daemon's own bound,
// warmFor, is shorter).
const recycleWait = time.Minute

// run runs one command, spec, until it ended and its exit is recorded and
// told; first is the connection of the daemon that started the holder. It
// returns the next command when that daemon recycles the holder, else nil
// and the process's exit code.
func run(spec Spec, first net.Conn, st starter) (*Spec, int) {
	if err := enter(spec.HolderDir); err != nil {
		return nil, st.fail(err)
	}
	// While the command starts: the socket goes up, the log is opened,
	// and pending.json (the daemon's record of this holder) is synced, so
	// that after a machine crash the directory still says its command was
	// handed over and it is not started again. All are done before "ok".
	type listened struct {
		ln   net.Listener
		sink io.Writer
		err  error
	}
	h := &holderProc{spec: spec, clients: map[*client]struct{}{}, recycle: make(chan []byte, 1)}
	lnc := make(chan listened, 1)
	go func() {
		ln, err := listen()
		lnc <- listened{ln, h.openSink(), err}
	}()
	synced := make(chan error, 1)
	go func() { synced <- syncPending() }()
	cmd, output, err := h.start()
	l := <-lnc
	serr := <-synced
	if err == nil && l.err == nil && serr != nil {
		l.err = serr
	}
	if err == nil && l.err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		err = l.err
	}
	if err != nil {
		if l.ln != nil {
			l.ln.Close()
		}
		return nil, st.fail(err)
	}
	ln := l.ln
	if err := h.greetFirst(first); err != nil {
		// The daemon is gone already: the command runs on, recorded in
		// holder.json for the next one.
		fmt.Fprintf(os.Stderr, "greet the daemon: %v\n", err)
	}
	st.ok()
	if err := redirectOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
	}
	go h.accept(ln)
	stopReaping := reapOrphans(h.rec.Command.Session)
	defer stopReaping()
	if h.spec.Mode == ModeTerminal && h.spec.Input != "" {
		go func() { _, _ = h.ptmx.Write([]byte(h.spec.Input)) }()
	}
	pumped := make(chan struct{})
	go func() { defer close(pumped); h.pump(output, l.sink) }()

	pid, start := h.rec.Command.Session, h.rec.Command.StartTicks
	if err := proc.WaitExited(pid); err != nil {
		fmt.Fprintf(os.Stderr, "wait for the command: %v\n", err)
	}
	// The leader exited but is not reaped: its pid cannot be recycled
	// while the rest of its session is killed.
	proc.KillSession(pid, start, pid)
	_ = cmd.Wait()
	reapAll()
	select {
	case <-pumped:
	case <-time.After(drainTimeout):
		fmt.Fprintln(os.Stderr, "output still open after the command's session ended: closing it")
	}
	output.Close()
	<-pumped
	if lp, ok := output.(*logPipe); ok {
		lp.release()
	}
	if cmd.ProcessState == nil {
		// Someone else reaped the leader: its status is gone. Never
		// expected; reported rather than taking the holder down.
		x := Exit{Code: -1, How: "the command's exit status was lost", FinishedAt: time.Now()}
		fmt.Fprintln(os.Stderr, x.How)
		h.finish(ln, x)
		return nil, 1
	}
	how, code := proc.ExitDescription(cmd.ProcessState)
	x := Exit{Code: code, How: how, FinishedAt: time.Now()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		x.Signal = int(ws.Signal())
	}
	if !h.finish(ln, x) {
		return nil, 0
	}
	// The first daemon still listens: it may hand this holder its next
	// command instead of starting a new holder (a whole process start of
	// this binary), or close the connection.
	select {
	case b := <-h.recycle:
		if b == nil {
			return nil, 0
		}
		var next Spec
		if err := json.Unmarshal(b, &next); err != nil {
			return nil, frameStatus{first}.fail(fmt.Errorf("read the holder spec: %w", err))
		}
		return &next, 0
	case <-time.After(recycleWait):
		return nil, 0
	}
}

// enter moves the holder into its directory: relative names are its files
// from here on.
func enter(dir string) error {
	if dir == "" {
		return errors.New("the holder spec names no holder directory")
	}
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("enter the holder directory: %w", err)
	}
	return nil
}

// redirectOutput sends the holder's own messages to holder.log in its
// directory. It is done after "ok": until then a failure goes to the
// daemon on the status pipe.
func redirectOutput() error {
	f, err := os.OpenFile(errorsFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open the holder's log: %w", err)
	}
	defer f.Close()
	for _, fd := range []int{1, 2} {
		if err := syscall.Dup3(int(f.Fd()), fd, 0); err != nil {
			return fmt.Errorf("redirect the holder's output: %w", err)
		}
	}
	return nil
}

// daemonConn is the holder's end of the socket pair the daemon started it
// with (fd 5).
func daemonConn() (net.Conn, error) {
	f := os.NewFile(5, "daemon")
	defer f.Close()
	conn, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("the connection to the daemon: %w", err)
	}
	return conn, nil
}

// start starts the command and records holder.json; it returns the
// command and what its output is read from.
func (h *holderProc) start() (*exec.Cmd, io.ReadCloser, error) {
	sp := h.spec
	if sp.Path == "" || len(sp.Args) == 0 {
		return nil, nil, errors.New("the holder spec names no command")
	}
	self, err := proc.ReadStat(os.Getpid())
	if err != nil {
		return nil, nil, fmt.Errorf("read the holder's start time: %w", err)
	}
	// A spec without an environment gives the command none: never the
	// holder's own.
	env := sp.Env
	if env == nil {
		env = []string{}
	}
	cmd := &exec.Cmd{Path: sp.Path, Args: sp.Args, Env: env, Dir: sp.Dir}
	attr := &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	var output io.ReadCloser
	switch sp.Mode {
	case ModeLog:
		r, w, err := newLogPipe()
		if err != nil {
			return nil, nil, err
		}
		cmd.Stdout, cmd.Stderr, cmd.SysProcAttr = w, w, attr
		err = cmd.Start()
		w.Close()
		if err != nil {
			r.release()
			return nil, nil, err
		}
		output = r
	case ModeTerminal:
		cols, rows := sp.Cols, sp.Rows
		if cols == 0 {
			cols = 80
		}
		if rows == 0 {
			rows = 24
		}
		attr.Setctty = true
		ptmx, err := pty.StartWithAttrs(cmd, &pty.Winsize{Cols: cols, Rows: rows}, attr)
		if err != nil {
			return nil, nil, err
		}
		size := sp.Scrollback
		if size <= 0 {
			size = 1 << 20
		}
		h.ptmx, h.scroll, output = ptmx, ring.New(size), ptmx
	default:
		return nil, nil, fmt.Errorf("holder mode %q: must be %q or %q", sp.Mode, ModeLog, ModeTerminal)
	}
	pid := cmd.Process.Pid
	st, err := proc.ReadStat(pid)
	if err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return nil, nil, fmt.Errorf("read the command's start time: %w", err)
	}
	boot := proc.BootID()
	h.rec = Record{
		Holder:    proc.Record{Session: os.Getpid(), StartTicks: self.StartTicks, BootID: boot},
		Command:   proc.Record{Session: pid, StartTicks: st.StartTicks, BootID: boot},
		StartedAt: time.Now(),
	}
	// holder.json is renamed into place, so a daemon never reads half of
	// it, but not synced: after a machine crash the processes it names are
	// gone, and the synced pending.json says the command was handed over.
	if err := writeRecord(h.rec); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return nil, nil, err
	}
	return cmd, output, nil
}

// syncPending makes the name pending.json durable by syncing the holder's
// directory. Its content needs no sync: after a machine crash only its
// existence matters (Unstarted), since the holder it names is gone, and a
// pending.json that cannot be read is taken for one whose holder is gone.
func syncPending() error {
	d, err := os.Open(".")
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", pendingFile, err)
	}
	return nil
}

// writeRecord writes holder.json: a temporary file renamed into place.
func writeRecord(rec Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(recordFile+".tmp", append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", recordFile, err)
	}
	if err := os.Rename(recordFile+".tmp", recordFile); err != nil {
		return fmt.Errorf("write %s: %w", recordFile, err)
	}
	return nil
}

// listen opens the socket in the holder's directory (its working
// directory: a relative name keeps clear of the length limit of socket
// paths).
func listen() (net.Listener, error) {
	_ = os.Remove(sockFile)
	ln, err := net.Listen("unix", sockFile)
	if err != nil {
		return nil, fmt.Errorf("listen on the holder socket: %w", err)
	}
	return ln, nil
}

// openSink opens where pump writes the output: the log file (its size
// known before the first daemon's hello), or the scrollback. It returns nil
// when the log cannot be opened: the output is then read and dropped.
func (h *holderProc) openSink() io.Writer {
	if h.spec.Mode == ModeTerminal {
		return terminalSink{h}
	}
	lf, err := os.OpenFile(h.spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "open the log: %v\n", err)
		return nil
	}
	if st, err := lf.Stat(); err == nil {
		h.mu.Lock()
		h.logSize = st.Size()
		h.mu.Unlock()
	}
	return &capped{h: h, f: lf, cap: h.spec.LogCap}
}

// pump copies the command's output until it ends: to the log file, or to
// the scrollback and the connected daemons, with secrets masked.
func (h *holderProc) pump(output io.Reader, sink io.Writer) {
	if sink == nil {
		_, _ = io.Copy(io.Discard, output)
		return
	}
	if c, ok := sink.(*capped); ok {
		defer c.f.Close()
	}
	m := mask.NewWriter(sink, h.spec.Mask)
	var flush *time.Timer
	buf := make([]byte, readBuffer)
	lp, _ := output.(*logPipe)
	for {
		n, err := output.Read(buf)
		if n > 0 {
			_, _ = m.Write(buf[:n])
			if h.spec.Mode == ModeTerminal && m.Pending() {
				// A terminal shows what was typed at once: held bytes that
				// stay alone are not a secret being printed.
				if flush != nil {
					flush.Stop()
				}
				flush = time.AfterFunc(flushAfter, func() { _ = m.Flush() })
			}
		}
		if err != nil {
			break
		}
		if lp != nil {
			// A fast writer's output is gathered into larger reads; a
			// slow one's big buffer goes back to the collector.
			if size := lp.gather(n); size != len(buf) {
				buf = make([]byte, size)
			}
		}
	}
	if flush != nil {
		flush.Stop()
	}
	_ = m.Flush()
}

// logTruncated marks where a run's log reached its cap.
const logTruncated = "\n[runyard: this log reached its cap of %d bytes; later output of this run was dropped]\n"

// capped writes a log file up to its cap, then a marker, and tells the
// connected daemons its size after every write.
type capped struct {
	h    *holderProc
	f    *os.File
	cap  int64
	full bool
}

func (c *capped) Write(p []byte) (int, error) {
	if c.full {
		return len(p), nil
	}
	c.h.mu.Lock()
	size := c.h.logSize
	c.h.mu.Unlock()
	b := p
	if c.cap > 0 {
		if room := c.cap - size; int64(len(b)) > room {
			b = append(b[:max(room, 0):max(room, 0)], fmt.Sprintf(logTruncated, c.cap)...)
			c.full = true
		}
	}
	n, _ := c.f.Write(b)
	c.h.mu.Lock()
	c.h.logSize += int64(n)
	var sz [8]byte
	binary.BigEndian.PutUint64(sz[:], uint64(c.h.logSize))
	c.h.broadcastLocked(frame{frameGrew, sz[:]})
	c.h.mu.Unlock()
	return len(p), nil
}

type terminalSink struct{ h *holderProc }

func (t terminalSink) Write(p []byte) (int, error) {
	t.h.mu.Lock()
	defer t.h.mu.Unlock()
	chunk := append([]byte(nil), p...)
	t.h.scroll.Write(chunk)
	t.h.broadcastLocked(frame{frameOutput, chunk})
	return len(p), nil
}

// broadcastLocked hands f to every connected daemon; one that fell too far
// behind is disconnected rather than waited for.
func (h *holderProc) broadcastLocked(f frame) {
	for c := range h.clients {
		select {
		case c.out <- f:
		default:
			h.dropLocked(c)
		}
	}
}

func (h *holderProc) dropLocked(c *client) {
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c.out)
	}
}

func (h *holderProc) accept(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		h.connect(conn)
	}
}

// connect greets a daemon: hello, the scrollback (terminal) or nothing
// more (log), and the exit if the command ended already.
func (h *holderProc) connect(conn net.Conn) {
	h.serveClient(conn, false)
}

// greetFirst greets the daemon that started the holder, on the connection
// it was started with, before "ok" and before any output: the frames are
// written at once (no writer goroutine to wait for), so the daemon finds
// them as soon as it hears "ok".
func (h *holderProc) greetFirst(conn net.Conn) error {
	hb, err := json.Marshal(hello{Mode: h.spec.Mode, Record: h.rec, LogSize: h.logSize})
	if err != nil {
		return err
	}
	if err := writeFrame(conn, frameHello, hb); err != nil {
		return err
	}
	if h.scroll != nil {
		if err := writeFrame(conn, frameOutput, h.scroll.Snapshot()); err != nil {
			return err
		}
	}
	h.serveClient(conn, true)
	return nil
}

// recyclable says whether the holder may run another command once this
// one ended: only a log's holder (a terminal's keeps its output file and
// scrollback for whoever attaches).
func (h *holderProc) recyclable() bool { return h.spec.Mode == ModeLog }

// serveClient registers a daemon's connection and serves it; greeted says
// whether hello (and the scrollback) went out already.
func (h *holderProc) serveClient(conn net.Conn, greeted bool) {
	c := &client{conn: conn, out: make(chan frame, clientBuffer), done: make(chan struct{}), first: greeted}
	h.mu.Lock()
	if !greeted {
		hb, _ := json.Marshal(hello{Mode: h.spec.Mode, Record: h.rec, LogSize: h.logSize})
		c.out <- frame{frameHello, hb}
		if h.scroll != nil {
			c.out <- frame{frameOutput, h.scroll.Snapshot()}
		}
	}
	if h.exit != nil {
		xb, _ := json.Marshal(h.exit)
		c.out <- frame{frameExit, xb}
		close(c.out)
	} else {
		h.clients[c] = struct{}{}
	}
	h.mu.Unlock()
	go c.write()
	go h.read(c)
}

func (c *client) write() {
	defer close(c.done)
	for f := range c.out {
		if err := writeFrame(c.conn, f.typ, f.payload); err != nil {
			// The reader sees the closed connection and drops c.
			c.conn.Close()
			for range c.out {
			}
			return
		}
	}
	if !c.keep.Load() {
		c.conn.Close()
	}
}

// read serves what a daemon sends: input, sizes, signals, and on the
// first daemon's connection kept after the exit, the next command.
func (h *holderProc) read(c *client) {
	defer func() {
		h.mu.Lock()
		h.dropLocked(c)
		h.mu.Unlock()
	}()
	for {
		typ, b, err := readFrame(c.conn)
		if err != nil {
			if c.keep.Load() {
				h.recycle <- nil
			}
			return
		}
		switch typ {
		case frameRecycle:
			if c.keep.Load() {
				// The connection is the next run's from here on: this
				// reader ends so that the next greeting starts its own.
				h.recycle <- b
				return
			}
		case frameInput:
			if h.ptmx != nil {
				_, _ = h.ptmx.Write(b)
			}
		case frameResize:
			if h.ptmx != nil && len(b) == 4 {
				resize(h.ptmx, binary.BigEndian.Uint16(b[0:]), binary.BigEndian.Uint16(b[2:]))
			}
		case frameSignal:
			if len(b) == 1 {
				h.mu.Lock()
				ended := h.exit != nil
				h.mu.Unlock()
				if !ended {
					proc.SignalSession(h.rec.Command.Session, h.rec.Command.StartTicks, 0, syscall.Signal(b[0]))
				}
			}
		}
	}
}

func resize(f *os.File, cols, rows uint16) {
	if cols == 0 || rows == 0 {
		return
	}
	ws := pty.Winsize{Cols: cols, Rows: rows}
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_, _, _ = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSWINSZ, uintptr(unsafe.Pointer(&ws)))
	})
}

// finish records the exit (a terminal's output first: an exit record
// promises it is there), tells the connected daemons and closes. It
// reports whether the first daemon's connection was kept open for a
// recycle (a log's holder whose first daemon is still connected).
func (h *holderProc) finish(ln net.Listener, x Exit) bool {
	if h.scroll != nil {
		h.mu.Lock()
		out := h.scroll.Snapshot()
		h.mu.Unlock()
		if err := writeSynced(OutputFile, out); err != nil {
			fmt.Fprintf(os.Stderr, "save the terminal's output: %v\n", err)
		}
	}
	if err := statefile.Write(exitFile, x); err != nil {
		fmt.Fprintf(os.Stderr, "record the exit: %v\n", err)
	}
	xb, _ := json.Marshal(x)
	h.mu.Lock()
	h.exit = &x
	var writers []*client
	kept := false
	for c := range h.clients {
		// Kept before the exit is queued: the daemon may answer it with
		// the next command at once.
		keep := c.first && h.recyclable()
		c.keep.Store(keep)
		select {
		case c.out <- frame{frameExit, xb}:
			kept = kept || keep
		default:
			c.keep.Store(false)
		}
		writers = append(writers, c)
		h.dropLocked(c)
	}
	h.mu.Unlock()
	ln.Close()
	_ = os.Remove(sockFile)
	// Give the writers a moment to deliver the exit; a daemon that misses
	// it reads exit.json.
	deadline := time.Now().Add(2 * time.Second)
	for _, c := range writers {
		_ = c.conn.SetWriteDeadline(deadline)
	}
	for _, c := range writers {
		<-c.done
	}
	for _, c := range writers {
		if c.keep.Load() {
			_ = c.conn.SetWriteDeadline(time.Time{})
		}
	}
	return kept
}

// reapOrphans reaps the processes handed to the holder (the command's
// orphans, reparented to it as a subreaper) when they exit, and never the
// command's leader, whose status exec.Cmd waits for, until the returned
// function is called (the run ended: reapAll took the rest). That function
// returns once the reaper stopped: a recycled holder's next command must
// not be reaped by the previous run's reaper, which does not know its
// leader (exec.Cmd would lose its exit status).
func reapOrphans(leader int) func() {
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		reapLoop(leader, chld, stop)
	}()
	return func() {
		signal.Stop(chld)
		close(stop)
		<-stopped
	}
}

func reapLoop(leader int, chld chan os.Signal, stop chan struct{}) {
	self := os.Getpid()
	for {
		select {
		case <-chld:
		case <-stop:
			return
		}
		// Both may be ready; stop wins.
		select {
		case <-stop:
			return
		default:
		}
		entries, err := os.ReadDir("/proc")
		if err != nil {
			continue
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == leader {
				continue
			}
			if st, err := proc.ReadStat(pid); err == nil && st.State == 'Z' && st.PPid == self {
				var ws syscall.WaitStatus
				_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			}
		}
	}
}

// reapAll reaps every child that exited, once the leader was reaped.
func reapAll() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path+".tmp", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
