package holder

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/runyard/runyard/internal/runner/proc"
)

// Hooks receive what a holder sends; they run on the handle's reader
// goroutine, one at a time, and must not block for long.
type Hooks struct {
	// Output receives a terminal's output. After every (re)connection the
	// first call carries the whole scrollback with reset set: whoever
	// keeps a copy replaces it.
	Output func(chunk []byte, reset bool)
	// Grew receives a log file's size after each write (and on connect).
	Grew func(size int64)
	// Recyclable says that the caller hands a log's holder back with
	// Recycle once its command ended and its directory is removed: the
	// holder then runs a later Start's command instead of ending, which
	// saves that Start a whole process start of this binary (most of a
	// short task step's cost).
	Recyclable bool
}

// Handle is a daemon's connection to one holder.
type Handle struct {
	dir   string
	hooks Hooks
	rec   Record

	wmu  sync.Mutex // serializes frames to the holder
	mu   sync.Mutex
	conn net.Conn // nil while not connected
	// detached is set by Detach: the reader stops without waiting for
	// the exit.
	detached bool

	done chan struct{} // closed once the command ended (exit is set)
	exit Exit

	// sp is the spare this handle's holder was started from (nil when
	// adopted), first the connection it was started with; kept is first,
	// held open after the exit for Recycle until keptTimer closes it.
	sp        *spare
	first     net.Conn
	kept      net.Conn
	keptTimer *time.Timer
}

// startTimeout bounds how long a new holder may take to start its command.
const startTimeout = 30 * time.Second

// Start starts a holder in dir (created 0700) running spec and connects to
// it. The caller records dir before calling Start, so that a daemon that
// dies meanwhile leaves its successor something to adopt.
func Start(dir string, spec Spec, hooks Hooks) (*Handle, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the holder directory: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	spec.HolderDir = abs
	if spec.Dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("working directory: %w", err)
		}
		spec.Dir = wd
	}
	if spec.LogPath != "" && !filepath.IsAbs(spec.LogPath) {
		abs, err := filepath.Abs(spec.LogPath)
		if err != nil {
			return nil, err
		}
		spec.LogPath = abs
	}
	var sp *spare
	for {
		if sp, err = spares.take(); err != nil {
			return nil, err
		}
		if !sp.warm {
			break
		}
		h, handed, err := startWarm(dir, sp, spec, hooks)
		if handed {
			return h, err
		}
		// That holder was gone before it got the command: nothing was
		// handed over; take another.
	}
	if err := handOver(dir, sp, spec); err != nil {
		return nil, err
	}
	_ = sp.statusR.SetReadDeadline(time.Now().Add(startTimeout))
	status, err := io.ReadAll(sp.statusR)
	sp.statusR.Close()
	if err != nil {
		sp.conn.Close()
		_ = sp.cmd.Process.Kill()
		return nil, fmt.Errorf("wait for the process holder: %w", err)
	}
	if s := string(status); s != "ok" {
		sp.conn.Close()
		msg := strings.TrimPrefix(s, "error: ")
		if msg == "" {
			msg = "the process holder ended without starting the command"
		}
		return nil, errors.New(msg)
	}
	// The holder greeted the connection it was started with before it
	// said "ok": no dial, and no read of holder.json, on the way.
	h := &Handle{dir: dir, hooks: hooks, done: make(chan struct{}), sp: sp, first: sp.conn}
	if err := h.greet(sp.conn); err != nil {
		// It died right after the start; Adopt finds out how it ended.
		sp.conn.Close()
		return Adopt(dir, hooks)
	}
	go h.readLoop(sp.conn)
	return h, nil
}

// startWarm hands spec to sp, a holder whose previous command ended
// (Recycle), over the connection it was started with. handed is false
// when the holder was gone before it could get the command: pending.json
// is removed again and nothing runs.
func startWarm(dir string, sp *spare, spec Spec, hooks Hooks) (h *Handle, handed bool, err error) {
	b, err := json.Marshal(spec)
	if err != nil {
		sp.conn.Close()
		return nil, true, err
	}
	if err := writePending(dir, sp.pending); err != nil {
		sp.conn.Close()
		return nil, true, err
	}
	if err := writeFrame(sp.conn, frameRecycle, b); err != nil {
		sp.conn.Close()
		_ = os.Remove(filepath.Join(dir, pendingFile))
		return nil, false, nil
	}
	h = &Handle{dir: dir, hooks: hooks, done: make(chan struct{}), sp: sp, first: sp.conn}
	_ = sp.conn.SetReadDeadline(time.Now().Add(startTimeout))
	if err := h.greet(sp.conn); err != nil {
		sp.conn.Close()
		var failed startFailed
		if errors.As(err, &failed) {
			return nil, true, errors.New(string(failed))
		}
		// It died after it got the command; Adopt finds out how it ended.
		h, err := Adopt(dir, hooks)
		return h, true, err
	}
	go h.readLoop(sp.conn)
	return h, true, nil
}

// startFailed is a recycled holder's report that its next command did
// not start (frameFailed).
type startFailed string

func (s startFailed) Error() string { return string(s) }

// warmFor bounds how long a holder whose command ended waits for
// Recycle, and then in the pool for a Start: shorter than the holder's own
// wait (recycleWait), so that a command is never handed to a holder that
// gave up.
const warmFor = 20 * time.Second

// Recycle hands the holder back to the pool of spares once its command
// ended and the caller removed its directory: the next Start runs its
// command there. It does nothing for a holder that cannot be recycled
// (a terminal's, an adopted one, one that lost the connection it was
// started with, one started without Hooks.Recyclable).
func (h *Handle) Recycle() {
	h.mu.Lock()
	conn := h.kept
	h.kept = nil
	if h.keptTimer != nil {
		h.keptTimer.Stop()
	}
	h.mu.Unlock()
	if conn == nil {
		return
	}
	spares.putWarm(&spare{cmd: h.sp.cmd, conn: conn, pending: h.sp.pending, warm: true, since: time.Now()})
}

// handOver hands spec to the spare holder sp, whose directory is dir.
// The holder is recorded in dir first: a daemon that dies from here on
// leaves its successor a holder it can find (Adopt waits for it to record
// the command), never one that runs unseen. On an error sp is killed.
func handOver(dir string, sp *spare, spec Spec) error {
	err := writePending(dir, sp.pending)
	if err == nil {
		err = json.NewEncoder(sp.specW).Encode(spec)
		if err != nil {
			err = fmt.Errorf("hand the command to its holder: %w", err)
		}
	}
	sp.specW.Close()
	if err != nil {
		sp.statusR.Close()
		sp.conn.Close()
		_ = sp.cmd.Process.Kill()
	}
	return err
}

// spare is a holder started ahead of need: a new holder is this whole
// binary starting up (some 40 ms of package initialization), which a
// service, step or pod should not wait for. It waits for its spec.
type spare struct {
	cmd            *exec.Cmd
	specW, statusR *os.File
	// conn is connected to the holder from the start (a socket pair): the
	// daemon that hands it a command talks to it over conn, without a dial
	// of DIR/sock.
	conn net.Conn
	// pending is the holder's record for pending.json, read while it
	// waited.
	pending []byte
	// warm: a holder whose command ended, recycled (Recycle) since; it
	// takes its next command on conn (no spec and status pipes).
	warm  bool
	since time.Time
}

// close releases what this process keeps of a spare it does not use.
func (sp *spare) close() {
	if sp.specW != nil {
		sp.specW.Close()
		sp.statusR.Close()
	}
	sp.conn.Close()
}

// maxWarm bounds the recycled holders the pool keeps beside its cold
// spares; past it a recycled holder is let go (it ends).
const maxWarm = 4

// putWarm keeps a recycled holder for the next Start.
func (p *sparePool) putWarm(sp *spare) {
	p.mu.Lock()
	if p.countLocked(true) >= maxWarm {
		p.mu.Unlock()
		sp.close()
		return
	}
	p.ready = append(p.ready, sp)
	p.mu.Unlock()
}

// sparePool keeps a few spare holders; the first Start of a process fills
// it, so a process that never starts a holder (the CLI) has none.
type sparePool struct {
	mu      sync.Mutex
	ready   []*spare
	filling bool
}

// spareCount is how many spare holders wait at most: a burst of starts
// past it waits for new ones, which start in parallel.
const spareCount = 2

var spares sparePool

// take returns a spare holder, or a new one when none waits, and has the
// pool filled again in the background.
func (p *sparePool) take() (*spare, error) {
	p.mu.Lock()
	sp := p.popLocked()
	fill := !p.filling
	p.filling = true
	p.mu.Unlock()
	if fill {
		go p.fill()
	}
	for sp != nil {
		// One that died waiting (killed by someone) is no use, nor one
		// recycled so long ago that it may be giving up.
		if sp.warm && time.Since(sp.since) > warmFor {
			sp.close()
		} else if err := sp.cmd.Process.Signal(syscall.Signal(0)); err == nil {
			return sp, nil
		} else {
			sp.close()
		}
		p.mu.Lock()
		sp = p.popLocked()
		p.mu.Unlock()
	}
	return spawn()
}

// countLocked counts the waiting spares that are recycled (warm) or not.
func (p *sparePool) countLocked(warm bool) int {
	n := 0
	for _, r := range p.ready {
		if r.warm == warm {
			n++
		}
	}
	return n
}

// popLocked takes the newest recycled holder, else the newest cold spare,
// nil when none waits.
func (p *sparePool) popLocked() *spare {
	n := len(p.ready)
	if n == 0 {
		return nil
	}
	i := n - 1
	for j := n - 1; j >= 0; j-- {
		if p.ready[j].warm {
			i = j
			break
		}
	}
	sp := p.ready[i]
	p.ready = append(p.ready[:i], p.ready[i+1:]...)
	return sp
}

func (p *sparePool) fill() {
	for {
		p.mu.Lock()
		if p.countLocked(false) >= spareCount {
			p.filling = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		sp, err := spawn()
		if err != nil {
			p.mu.Lock()
			p.filling = false
			p.mu.Unlock()
			return
		}
		p.mu.Lock()
		p.ready = append(p.ready, sp)
		p.mu.Unlock()
	}
}

// spawn starts a holder that waits for its spec.
func spawn() (*spare, error) {
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		specR.Close()
		specW.Close()
		return nil, err
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		specR.Close()
		specW.Close()
		statusR.Close()
		statusW.Close()
		return nil, fmt.Errorf("start the process holder: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "holder"), os.NewFile(uintptr(fds[1]), "daemon")
	cmd := &exec.Cmd{
		Path: "/proc/self/exe", Args: []string{Name}, Dir: "/",
		// The holder needs no environment of its own: the command's comes
		// in the spec. One P is plenty for a process that copies one
		// command's output, and it keeps the holder's threads and memory
		// down. Its output goes to its directory's holder.log once it knows
		// it.
		Env:         []string{"GOMAXPROCS=1"},
		ExtraFiles:  []*os.File{specR, statusW, theirs},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	specR.Close()
	statusW.Close()
	theirs.Close()
	var conn net.Conn
	if err == nil {
		conn, err = net.FileConn(mine)
	}
	mine.Close()
	if err != nil {
		specW.Close()
		statusR.Close()
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		return nil, fmt.Errorf("start the process holder: %w", err)
	}
	// The holder is this process's child until this process ends: reap it.
	// Wait alone blocks an OS thread in waitid for the holder's whole life
	// (a runner with 200 services had 211 threads); the pidfd on the
	// poller parks only the goroutine, and Wait then returns at once.
	go func() {
		_ = proc.WaitExited(cmd.Process.Pid)
		_ = cmd.Wait()
	}()
	sp := &spare{cmd: cmd, specW: specW, statusR: statusR, conn: conn}
	if sp.pending, err = pendingRecord(cmd.Process.Pid); err != nil {
		sp.close()
		_ = cmd.Process.Kill()
		return nil, err
	}
	return sp, nil
}

// Adopt connects to the holder in dir. A holder that ended left its exit,
// one that died is swept (ErrDied's exit): either way the handle comes back
// with Done closed, so callers treat every case alike.
func Adopt(dir string, hooks Hooks) (*Handle, error) {
	h := &Handle{dir: dir, hooks: hooks, done: make(chan struct{})}
	rec, err := awaitRecord(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	h.rec = rec
	if h.ended() {
		return h, nil
	}
	conn, err := h.dial()
	if err == nil {
		if err = h.greet(conn); err != nil {
			conn.Close()
			conn = nil
		}
	}
	if err != nil {
		if h.ended() {
			return h, nil
		}
		if !h.rec.Alive() {
			return nil, err
		}
		// The holder runs but does not answer yet (its socket is not up,
		// the machine is busy): the handle keeps trying in the
		// background. Failing here would leave its command running with
		// no daemon watching, or have it started a second time.
	}
	go h.readLoop(conn)
	return h, nil
}

// ended closes done when the command's exit is known: recorded, or the
// holder is gone without one (then it is swept). It reports whether it
// closed done.
func (h *Handle) ended() bool {
	x, err := ReadExit(h.dir)
	if err != nil {
		if h.rec.Holder.Session != 0 && h.rec.Alive() {
			return false
		}
		if h.rec.Holder.Session == 0 {
			// No record: the holder never started the command. Look again:
			// it may be writing the record now.
			if rec, err := ReadRecord(h.dir); err == nil {
				h.rec = rec
				if rec.Alive() {
					return false
				}
			}
		}
		if x, err = Sweep(h.dir); err != nil {
			return false
		}
	}
	h.setExit(x)
	return true
}

// setExit records how the command ended, once, and reaps the holder.
func (h *Handle) setExit(x Exit) {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.done:
	default:
		h.exit = x
		close(h.done)
		if h.sp == nil {
			// A holder this process started is reaped by its exec.Cmd
			// (and a recycled one does not end).
			go reapHolder(h.rec.Holder)
		}
	}
}

// dial connects to the holder's socket through the directory's descriptor,
// so that a long state directory path does not exceed the length limit of
// socket addresses.
func (h *Handle) dial() (net.Conn, error) {
	d, err := os.Open(h.dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	addr := "/proc/self/fd/" + strconv.Itoa(int(d.Fd())) + "/" + sockFile
	var lastErr error
	for range 50 {
		conn, err := net.Dial("unix", addr)
		if err == nil {
			return conn, nil
		}
		lastErr = err
		if !h.rec.Alive() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("connect to the process holder in %s: %w", h.dir, lastErr)
}

// greet reads the hello and, for a terminal, the scrollback.
func (h *Handle) greet(conn net.Conn) error {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	typ, b, err := readFrame(conn)
	if err != nil {
		return fmt.Errorf("greet the process holder: %w", err)
	}
	if typ == frameFailed {
		return startFailed(b)
	}
	if typ != frameHello {
		return fmt.Errorf("greet the process holder: got frame %q", typ)
	}
	var hi hello
	if err := json.Unmarshal(b, &hi); err != nil {
		return fmt.Errorf("greet the process holder: %w", err)
	}
	h.mu.Lock()
	h.rec, h.conn = hi.Record, conn
	h.mu.Unlock()
	if hi.Mode == ModeLog && h.hooks.Grew != nil {
		h.hooks.Grew(hi.LogSize)
	}
	if hi.Mode == ModeTerminal {
		typ, b, err := readFrame(conn)
		if err != nil || typ != frameOutput {
			return fmt.Errorf("read the scrollback from the process holder: %v", err)
		}
		if h.hooks.Output != nil {
			h.hooks.Output(b, true)
		}
	}
	return nil
}

// readLoop delivers frames until the holder reports the exit; a broken
// connection to a holder that still runs is made again (conn nil: it was
// never made).
func (h *Handle) readLoop(conn net.Conn) {
	for {
		if conn != nil {
			if h.read(conn) {
				// Kept for Recycle (read did); the exit is known.
				return
			}
			conn.Close()
		}
		h.mu.Lock()
		h.conn = nil
		detached := h.detached
		h.mu.Unlock()
		if detached || h.isDone() || h.ended() {
			return
		}
		var err error
		if conn, err = h.dial(); err == nil {
			if err = h.greet(conn); err == nil {
				continue
			}
			conn.Close()
		}
		// The holder runs but cannot be reached: look again shortly.
		for !h.ended() {
			time.Sleep(time.Second)
			h.mu.Lock()
			detached := h.detached
			h.mu.Unlock()
			if detached {
				return
			}
			if conn, err = h.dial(); err == nil {
				if err = h.greet(conn); err == nil {
					break
				}
				conn.Close()
			}
		}
		if h.isDone() {
			return
		}
	}
}

// keep holds conn, the connection the holder was started with, open
// after the exit for Recycle, for at most warmFor.
func (h *Handle) keep(conn net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.kept = conn
	h.keptTimer = time.AfterFunc(warmFor, func() {
		h.mu.Lock()
		c := h.kept
		h.kept = nil
		h.mu.Unlock()
		if c != nil {
			c.Close()
		}
	})
}

// read delivers conn's frames until the connection ends or the exit came.
// It reports whether it kept conn open for Recycle: the exit came on the
// connection a recyclable holder was started with.
func (h *Handle) read(conn net.Conn) bool {
	// A log's holder sends a frame per write of its command (its new
	// size): buffered, those that queued up while this process was busy
	// take one read, not two each.
	br := bufio.NewReaderSize(conn, 16<<10)
	for {
		typ, b, err := readFrame(br)
		if err != nil {
			return false
		}
		switch typ {
		case frameOutput:
			if h.hooks.Output != nil {
				h.hooks.Output(b, false)
			}
		case frameGrew:
			if len(b) == 8 && h.hooks.Grew != nil {
				h.hooks.Grew(int64(binary.BigEndian.Uint64(b)))
			}
		case frameExit:
			// Kept before the exit is told: whoever waits for it may
			// Recycle at once.
			var x Exit
			if json.Unmarshal(b, &x) != nil {
				// readLoop finds the exit in exit.json.
				return false
			}
			kept := conn == h.first && h.hooks.Recyclable
			if kept {
				h.keep(conn)
			}
			h.setExit(x)
			return kept
		}
	}
}

// reapHolder reaps the holder once it exited when it is this process's
// child without an exec.Cmd waiting for it: a holder adopted by a daemon
// that re-executed itself, or handed to this process as a subreaper after
// the daemon that started it died. A holder ends soon after its command,
// but on a loaded machine that can take seconds: it is watched, less often
// as time goes on, for up to reapPatience, so that it never stays a zombie.
func reapHolder(rec proc.Record) {
	self := os.Getpid()
	wait := 10 * time.Millisecond
	for end := time.Now().Add(reapPatience); time.Now().Before(end); {
		st, err := proc.ReadStat(rec.Session)
		if err != nil || st.StartTicks != rec.StartTicks || st.PPid != self {
			return
		}
		if st.State == 'Z' {
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(rec.Session, &ws, syscall.WNOHANG, nil)
			return
		}
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
	}
}

// reapPatience bounds how long reapHolder watches a holder that does not
// end: one that outlives its command by this much is stuck, and is the
// next daemon's to sweep.
const reapPatience = 10 * time.Minute

func (h *Handle) isDone() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// Dir is the holder's directory.
func (h *Handle) Dir() string { return h.dir }

// Record identifies the holder and its command.
func (h *Handle) Record() Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rec
}

// Done is closed once the command ended; Exit then says how.
func (h *Handle) Done() <-chan struct{} { return h.done }

// Exit is how the command ended; valid once Done is closed.
func (h *Handle) Exit() Exit {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.exit
}

// ErrNotConnected is returned for input, sizes and signals while the
// holder cannot be reached.
var ErrNotConnected = errors.New("not connected to the process holder")

func (h *Handle) send(typ byte, payload []byte) error {
	h.mu.Lock()
	conn := h.conn
	h.mu.Unlock()
	if conn == nil || h.isDone() {
		return ErrNotConnected
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	return writeFrame(conn, typ, payload)
}

// Signal sends sig to every process in the command's session. Without a
// connection it signals the session directly, from the pids recorded.
func (h *Handle) Signal(sig syscall.Signal) error {
	if h.isDone() {
		return nil
	}
	if err := h.send(frameSignal, []byte{byte(sig)}); err != nil {
		rec := h.Record()
		if rec.Command.Session <= 0 {
			return err
		}
		signalRecorded(rec, sig)
	}
	return nil
}

// Input types b into the command's terminal.
func (h *Handle) Input(b []byte) error { return h.send(frameInput, b) }

// Resize sets the command's terminal size.
func (h *Handle) Resize(cols, rows uint16) error {
	var b [4]byte
	binary.BigEndian.PutUint16(b[0:], cols)
	binary.BigEndian.PutUint16(b[2:], rows)
	return h.send(frameResize, b[:])
}

// Detach closes the connection and leaves the holder and its command
// running, for the next daemon to adopt.
func (h *Handle) Detach() {
	h.mu.Lock()
	h.detached = true
	conn := h.conn
	h.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}
