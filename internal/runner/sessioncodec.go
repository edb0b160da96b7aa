package runner

import (
	"fmt"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
)

// sessionCodec is the Session streams' protobuf codec. It decodes a
// message that is only stdin (a port forward's bytes, an upload's) into a
// pooled buffer that receive hands back once it wrote it: protobuf
// allocates a new slice for every bytes field, and at 256 KiB a message
// the allocations and the collector were an eighth of the runner's CPU in
// a port forward. Everything else is plain protobuf.
type sessionCodec struct{}

// sessionChunkSize is the capacity of the pooled stdin buffers: the CLI's
// chunks of a forwarded connection are at most this; a larger one gets a
// buffer of its own.
const sessionChunkSize = 256 << 10

var sessionChunks = sync.Pool{New: func() any { b := make([]byte, sessionChunkSize); return &b }}

// putSessionChunk returns a stdin buffer of sessionCodec's once it was
// used; other slices are left alone.
func putSessionChunk(b []byte) {
	if cap(b) != sessionChunkSize {
		return
	}
	b = b[:cap(b)]
	sessionChunks.Put(&b)
}

func (sessionCodec) Name() string { return "proto" }

func (sessionCodec) Marshal(m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("marshal %T: not a protobuf message", m)
	}
	return proto.Marshal(pm)
}

// MarshalAppend lets Connect marshal into its pooled buffers.
func (sessionCodec) MarshalAppend(dst []byte, m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("marshal %T: not a protobuf message", m)
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, pm)
}

func (sessionCodec) Unmarshal(data []byte, m any) error {
	if r, ok := m.(*runnerv1.SessionResponse); ok {
		if b, ok := onlyStdin(data); ok && len(b) <= sessionChunkSize {
			buf := *sessionChunks.Get().(*[]byte)
			r.Reset()
			r.Message = &runnerv1.SessionResponse_Stdin{Stdin: buf[:copy(buf, b)]}
			return nil
		}
	}
	pm, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("unmarshal into %T: not a protobuf message", m)
	}
	if err := proto.Unmarshal(data, pm); err != nil {
		return fmt.Errorf("unmarshal into %T: %w", m, err)
	}
	return nil
}

// onlyStdin returns the stdin bytes of an encoded SessionResponse that
// holds nothing else (field 1, length-delimited, once).
func onlyStdin(data []byte) ([]byte, bool) {
	num, typ, n := protowire.ConsumeTag(data)
	if n < 0 || num != 1 || typ != protowire.BytesType {
		return nil, false
	}
	b, m := protowire.ConsumeBytes(data[n:])
	if m < 0 || n+m != len(data) {
		return nil, false
	}
	return b, true
}
