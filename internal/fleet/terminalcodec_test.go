package fleet

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
)

// TestTerminalCodec decodes what plain protobuf encodes: a large output
// into a pooled buffer, everything else as protobuf does.
func TestTerminalCodec(t *testing.T) {
	var c TerminalCodec
	for _, tc := range []struct {
		name   string
		msg    *runnerv1.TerminalRequest
		pooled bool
	}{
		{"LargeOutput", &runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_Output{Output: bytes.Repeat([]byte("log line\n"), 20000)}}, true},
		{"LargestOutput", &runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_Output{Output: bytes.Repeat([]byte{'x'}, terminalChunkSize)}}, true},
		{"TooLargeOutput", &runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_Output{Output: bytes.Repeat([]byte{'x'}, terminalChunkSize+1)}}, false},
		{"SmallOutput", &runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_Output{Output: []byte("$ ")}}, false},
		{"Hello", &runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_Hello{Hello: &runnerv1.TerminalHello{SessionId: "s1"}}}, false},
		{"End", &runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_End{End: &runnerv1.TerminalEnd{Reason: "end of log"}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := c.MarshalAppend(nil, tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			var got runnerv1.TerminalRequest
			if err := c.Unmarshal(data, &got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&got, tc.msg) {
				t.Fatalf("decoded %v, want %v", &got, tc.msg)
			}
			if pooled := cap(got.GetOutput()) == terminalChunkSize; pooled != tc.pooled {
				t.Errorf("output in a pooled buffer: %v, want %v", pooled, tc.pooled)
			}
			// The decoded output must not alias the encoding: Connect reuses
			// its buffer for the next message.
			for i := range data {
				data[i] = 0
			}
			if !proto.Equal(&got, tc.msg) {
				t.Errorf("the decoded message changed with its encoding")
			}
			putTerminalChunk(got.GetOutput())
		})
	}
	var sess runnerv1.SessionRequest
	if err := c.Unmarshal([]byte{0x0a, 0x00}, &sess); err != nil {
		t.Errorf("another message type: %v", err)
	}
}
