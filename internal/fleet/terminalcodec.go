package fleet

import (
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/chunkcodec"
)

// TerminalCodec is the protobuf codec of the runner protocol's handler
// (connect.WithCodec). It decodes a Terminal message that is only output
// (a log's chunk, up to 256 KiB) into a pooled buffer, which a LogReader
// hands back once the chunk was written to its reader: protobuf allocates
// a new slice for every bytes field, and a followed log at hundreds of
// MB/s made the collector and the zeroing of fresh pages a fifth of the
// control plane's CPU. A pod terminal's reader keeps its chunks, which
// then simply stay out of the pool. Everything else is plain protobuf.
type TerminalCodec struct{ chunkcodec.Proto }

// terminalChunkSize is the capacity of the pooled output buffers: the
// runner's log chunks are at most this (runner.maxLogChunk); a larger one
// gets a buffer of its own.
const terminalChunkSize = 256 << 10

// minPooledChunk is the smallest output decoded into a pooled buffer: a
// smaller one (a terminal's keystroke echo, a log's line now and then) is
// cheap to allocate, and a reader that keeps it should not hold 256 KiB
// for it.
const minPooledChunk = 32 << 10

var terminalChunks = chunkcodec.NewPool(terminalChunkSize)

// putTerminalChunk returns an output buffer of TerminalCodec's once it was
// used; other slices are left alone.
func putTerminalChunk(b []byte) { terminalChunks.Put(b) }

func (c TerminalCodec) Unmarshal(data []byte, m any) error {
	if r, ok := m.(*runnerv1.TerminalRequest); ok {
		// Field 2 is output.
		if b, ok := chunkcodec.Only(data, 2); ok && len(b) >= minPooledChunk && len(b) <= terminalChunkSize {
			r.Reset()
			r.Message = &runnerv1.TerminalRequest_Output{Output: terminalChunks.Copy(b)}
			return nil
		}
	}
	return c.Proto.Unmarshal(data, m)
}
