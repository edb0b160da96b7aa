package automations

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// chunkRecorder keeps what a follower wrote and the size of each write.
type chunkRecorder struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes []int
}

func (c *chunkRecorder) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, len(p))
	return c.b.Write(p)
}

func (c *chunkRecorder) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Len()
}

// TestCopyLog_FollowInLargeChunks checks that a follower catching up on a
// log goes in chunks of copyChunk (each is a message to the control plane:
// with io.Copy's 32 KiB a fast log cost eight times the messages), and that
// it still gets a line written later, then the end.
func TestCopyLog_FollowInLargeChunks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.log")
	l, err := createLog(path, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), 1<<14) // 1 MiB
	for p := want; len(p) > 0; p = p[min(len(p), 32<<10):] {
		l.Write(p[:min(len(p), 32<<10)])
	}
	var w chunkRecorder
	done := make(chan error, 1)
	go func() { done <- copyLog(context.Background(), path, l, true, &w) }()
	deadline := time.Now().Add(10 * time.Second)
	for w.len() < len(want) {
		if time.Now().After(deadline) {
			t.Fatalf("the follower has %d of %d bytes after 10s", w.len(), len(want))
		}
		time.Sleep(time.Millisecond)
	}
	l.Write([]byte("late\n"))
	want = append(want, "late\n"...)
	for w.len() < len(want) {
		if time.Now().After(deadline) {
			t.Fatalf("the follower did not get the line written later")
		}
		time.Sleep(time.Millisecond)
	}
	l.close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follower did not end with the log")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !bytes.Equal(w.b.Bytes(), want) {
		t.Errorf("followed %d bytes, want the %d written, in order", w.b.Len(), len(want))
	}
	if got := w.writes[0]; got != copyChunk {
		t.Errorf("first write of the catch-up: %d bytes, want %d", got, copyChunk)
	}
	if len(w.writes) > 1<<20/copyChunk+1 {
		t.Errorf("%d writes for 1 MiB and a line (sizes %v), want at most %d", len(w.writes), w.writes, 1<<20/copyChunk+1)
	}
}

// fileTaker is a writer that takes sections of a file (as a connection
// does with sendfile): it records what each ReadFrom was handed.
type fileTaker struct {
	chunkRecorder
	handed []string
}

func (f *fileTaker) ReadFrom(r io.Reader) (int64, error) {
	lr, limited := r.(*io.LimitedReader)
	file := false
	if limited {
		_, file = lr.R.(*os.File)
	}
	f.mu.Lock()
	f.handed = append(f.handed, fmt.Sprintf("limited=%v file=%v", limited, file))
	f.mu.Unlock()
	b, err := io.ReadAll(r)
	if len(b) > 0 {
		f.Write(b)
	}
	return int64(len(b)), err
}

// TestCopyLog_HandsTheFileToAReaderFrom checks that a follower that can
// take a file (a log's connection of its own, which sends it with
// sendfile) gets each new section of the log as a limited reader of the
// file itself, at the right offset: the whole log in order, a line
// written later, then the end.
func TestCopyLog_HandsTheFileToAReaderFrom(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.log")
	l, err := createLog(path, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), 1<<12)
	l.Write(want)
	var w fileTaker
	done := make(chan error, 1)
	go func() { done <- copyLog(context.Background(), path, l, true, &w) }()
	deadline := time.Now().Add(10 * time.Second)
	for _, more := range []string{"", "late\n", "later\n"} {
		l.Write([]byte(more))
		want = append(want, more...)
		for w.len() < len(want) {
			if time.Now().After(deadline) {
				t.Fatalf("the follower has %d of %d bytes after 10s", w.len(), len(want))
			}
			time.Sleep(time.Millisecond)
		}
	}
	l.close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follower did not end with the log")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !bytes.Equal(w.b.Bytes(), want) {
		t.Errorf("followed %d bytes, want the %d written, in order", w.b.Len(), len(want))
	}
	if len(w.handed) < 3 {
		t.Errorf("ReadFrom called %d times for a log written three times", len(w.handed))
	}
	for i, h := range w.handed {
		if h != "limited=true file=true" {
			t.Errorf("ReadFrom %d was handed %s, want a limited reader of the file", i, h)
		}
	}
}
