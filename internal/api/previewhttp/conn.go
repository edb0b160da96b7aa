package previewhttp

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/rawconn"
)

// streamConn is a TCP session into an environment (envaccess.Stream) as a
// net.Conn, for http.Transport: the preview proxy's connections to a port.
type streamConn struct {
	st   envaccess.Stream
	addr string

	rmu  sync.Mutex
	buf  []byte
	rerr error

	closeOnce sync.Once
}

// maxWrite bounds one message to the runner.
const maxWrite = 256 << 10

func (c *streamConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.buf) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		f, err := c.st.Recv()
		if err != nil {
			c.rerr = err
			if errors.Is(err, io.EOF) {
				c.rerr = io.EOF
			}
			continue
		}
		c.buf = f.Data
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

func (c *streamConn) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxWrite)]
		if err := c.st.Write(chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// CloseWrite half-closes the connection to the port.
func (c *streamConn) CloseWrite() error { return c.st.CloseStdin() }

func (c *streamConn) Close() error {
	c.closeOnce.Do(c.st.Close)
	return nil
}

// rawConn is a TCP session into an environment on the runner's connection
// of its own (envaccess.RawStream): its bytes are the port's. Close ends
// the session (which closes the connection); the address is the port's.
type rawConn struct {
	net.Conn
	st   envaccess.Stream
	addr string
}

// CloseWrite half-closes the connection to the port.
func (c *rawConn) CloseWrite() error { return rawconn.CloseWrite(c.Conn) }

func (c *rawConn) Close() error {
	c.st.Close()
	return nil
}

func (c *rawConn) LocalAddr() net.Addr  { return previewAddr("control-plane") }
func (c *rawConn) RemoteAddr() net.Addr { return previewAddr(c.addr) }

type previewAddr string

func (a previewAddr) Network() string { return "runyard-preview" }
func (a previewAddr) String() string  { return string(a) }

func (c *streamConn) LocalAddr() net.Addr  { return previewAddr("control-plane") }
func (c *streamConn) RemoteAddr() net.Addr { return previewAddr(c.addr) }

// Deadlines are not kept: http.Transport ends a connection it gives up on
// by closing it, which ends the session.
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }
