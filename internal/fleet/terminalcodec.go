package fleet

import (
	"fmt"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
)

// TerminalCodec is the protobuf codec of the runner protocol's handler
// (connect.WithCodec). It decodes a Terminal message that is only output
// (a log's chunk, up to 256 KiB) into a pooled buffer, which a LogReader
// hands back once the chunk was written to its reader: protobuf allocates
// a new slice for every bytes field, and a followed log at hundreds of
// MB/s made the collector and the zeroing of fresh pages a fifth of the
// control plane's CPU. A pod terminal's reader keeps its chunks, which
// then simply stay out of the pool. Everything else is plain protobuf.
type TerminalCodec struct{}

// terminalChunkSize is the capacity of the pooled output buffers: the
// runner's log chunks are at most this (runner.maxLogChunk); a larger one
// gets a buffer of its own.
const terminalChunkSize = 256 << 10

// minPooledChunk is the smallest output decoded into a pooled buffer: a
// smaller one (a terminal's keystroke echo, a log's line now and then) is
// cheap to allocate, and a reader that keeps it should not hold 256 KiB
// for it.
const minPooledChunk = 32 << 10

var terminalChunks = sync.Pool{New: func() any { b := make([]byte, terminalChunkSize); return &b }}

// putTerminalChunk returns an output buffer of TerminalCodec's once it was
// used; other slices are left alone.
func putTerminalChunk(b []byte) {
	if cap(b) != terminalChunkSize {
		return
	}
	b = b[:cap(b)]
	terminalChunks.Put(&b)
}

func (TerminalCodec) Name() string { return "proto" }

func (TerminalCodec) Marshal(m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("marshal %T: not a protobuf message", m)
	}
	return proto.Marshal(pm)
}

// MarshalAppend lets Connect marshal into its pooled buffers.
func (TerminalCodec) MarshalAppend(dst []byte, m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("marshal %T: not a protobuf message", m)
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, pm)
}

func (TerminalCodec) Unmarshal(data []byte, m any) error {
	if r, ok := m.(*runnerv1.TerminalRequest); ok {
		if b, ok := onlyOutput(data); ok && len(b) >= minPooledChunk && len(b) <= terminalChunkSize {
			buf := *terminalChunks.Get().(*[]byte)
			r.Reset()
			r.Message = &runnerv1.TerminalRequest_Output{Output: buf[:copy(buf, b)]}
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

// onlyOutput returns the output bytes of an encoded TerminalRequest that
// holds nothing else (field 2, length-delimited, once).
func onlyOutput(data []byte) ([]byte, bool) {
	num, typ, n := protowire.ConsumeTag(data)
	if n < 0 || num != 2 || typ != protowire.BytesType {
		return nil, false
	}
	b, m := protowire.ConsumeBytes(data[n:])
	if m < 0 || n+m != len(data) {
		return nil, false
	}
	return b, true
}
