package runner

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
)

func TestSessionCodec(t *testing.T) {
	var c sessionCodec
	big := bytes.Repeat([]byte("x"), sessionChunkSize+1)
	for _, in := range []*runnerv1.SessionResponse{
		{Message: &runnerv1.SessionResponse_Stdin{Stdin: []byte("hello")}},
		{Message: &runnerv1.SessionResponse_Stdin{Stdin: []byte{}}},
		{Message: &runnerv1.SessionResponse_Stdin{Stdin: big}},
		{Message: &runnerv1.SessionResponse_StdinEof{StdinEof: true}},
		{Message: &runnerv1.SessionResponse_Signal{Signal: "INT"}},
		{Message: &runnerv1.SessionResponse_Resize{Resize: &runnerv1.TerminalSize{Cols: 80, Rows: 24}}},
	} {
		b, err := c.MarshalAppend(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		out := &runnerv1.SessionResponse{}
		if err := c.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(in, out) {
			t.Fatalf("round trip of %v gave %v", in, out)
		}
		putSessionChunk(out.GetStdin())
	}
	// A stdin chunk decodes into a pooled buffer.
	b, _ := c.Marshal(&runnerv1.SessionResponse{Message: &runnerv1.SessionResponse_Stdin{Stdin: []byte("one")}})
	first := &runnerv1.SessionResponse{}
	if err := c.Unmarshal(b, first); err != nil {
		t.Fatal(err)
	}
	if cap(first.GetStdin()) != sessionChunkSize {
		t.Fatalf("stdin of %d bytes: cap %d, want a pooled buffer", len(first.GetStdin()), cap(first.GetStdin()))
	}
	if err := c.Unmarshal([]byte{0x0a, 0x05, 'a'}, &runnerv1.SessionResponse{}); err == nil {
		t.Fatal("a truncated message decoded")
	}
}
