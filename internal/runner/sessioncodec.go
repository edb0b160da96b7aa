package runner

import (
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/chunkcodec"
)

// sessionCodec is the Session streams' protobuf codec. It decodes a
// message that is only stdin (a port forward's bytes, an upload's) into a
// pooled buffer that receive hands back once it wrote it: protobuf
// allocates a new slice for every bytes field, and at 256 KiB a message
// the allocations and the collector were an eighth of the runner's CPU in
// a port forward. Everything else is plain protobuf.
type sessionCodec struct{ chunkcodec.Proto }

// sessionChunkSize is the capacity of the pooled stdin buffers: the CLI's
// chunks of a forwarded connection are at most this; a larger one gets a
// buffer of its own.
const sessionChunkSize = 256 << 10

var sessionChunks = chunkcodec.NewPool(sessionChunkSize)

// putSessionChunk returns a stdin buffer of sessionCodec's once it was
// used; other slices are left alone.
func putSessionChunk(b []byte) { sessionChunks.Put(b) }

func (c sessionCodec) Unmarshal(data []byte, m any) error {
	if r, ok := m.(*runnerv1.SessionResponse); ok {
		// Field 1 is stdin.
		if b, ok := chunkcodec.Only(data, 1); ok && len(b) <= sessionChunkSize {
			r.Reset()
			r.Message = &runnerv1.SessionResponse_Stdin{Stdin: sessionChunks.Copy(b)}
			return nil
		}
	}
	return c.Proto.Unmarshal(data, m)
}
