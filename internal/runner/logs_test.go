package runner

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

// TestEnvelopeBody reads messages written the way Connect writes them (the
// prefix, then the payload) through reads of several sizes: a read at a
// message's start holds the prefix and as much of the payload as fits, and
// the stream comes out unchanged.
func TestEnvelopeBody(t *testing.T) {
	payloads := [][]byte{bytes.Repeat([]byte("a"), 300), {}, bytes.Repeat([]byte("b"), 10), bytes.Repeat([]byte("c"), 1000)}
	var want bytes.Buffer
	for _, p := range payloads {
		var h [5]byte
		binary.BigEndian.PutUint32(h[1:], uint32(len(p)))
		want.Write(h[:])
		want.Write(p)
	}
	for _, size := range []int{4, 5, 64, 305, 4096} {
		pr, pw := io.Pipe()
		go func() {
			for _, p := range payloads {
				var h [5]byte
				binary.BigEndian.PutUint32(h[1:], uint32(len(p)))
				_, _ = pw.Write(h[:])
				if len(p) > 0 {
					_, _ = pw.Write(p)
				}
			}
			pw.Close()
		}()
		b := &envelopeBody{ReadCloser: pr}
		var got bytes.Buffer
		var reads []int
		buf := make([]byte, size)
		for {
			n, err := b.Read(buf)
			got.Write(buf[:n])
			reads = append(reads, n)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("read size %d: %v", size, err)
			}
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("read size %d: the stream changed", size)
		}
		if size >= 4096 && (reads[0] != 305 || reads[1] != 5 || reads[2] != 15 || reads[3] != 1005) {
			t.Errorf("read size %d: reads of %v, want one per message (305, 5, 15, 1005)", size, reads)
		}
	}
}
