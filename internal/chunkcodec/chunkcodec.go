// Package chunkcodec holds what the runner protocol's pooled codecs share:
// plain protobuf for Connect (connect.WithCodec), fixed-size buffer pools,
// and the test for a message that carries only one bytes field. Protobuf
// allocates a new slice for every bytes field it decodes; on the streams
// that carry hundreds of MB/s (a followed log, a port forward) those
// allocations and the collector's work were a fifth of a process's CPU, so
// a stream's codec decodes such a message into a pooled buffer instead.
package chunkcodec

import (
	"fmt"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Proto is plain protobuf: a codec embeds it and decodes its own message
// kind before falling back to Unmarshal.
type Proto struct{}

func (Proto) Name() string { return "proto" }

func (Proto) Marshal(m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("marshal %T: not a protobuf message", m)
	}
	return proto.Marshal(pm)
}

// MarshalAppend lets Connect marshal into its pooled buffers.
func (Proto) MarshalAppend(dst []byte, m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("marshal %T: not a protobuf message", m)
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, pm)
}

func (Proto) Unmarshal(data []byte, m any) error {
	pm, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("unmarshal into %T: not a protobuf message", m)
	}
	if err := proto.Unmarshal(data, pm); err != nil {
		return fmt.Errorf("unmarshal into %T: %w", m, err)
	}
	return nil
}

// Pool is buffers of one size.
type Pool struct {
	size int
	p    sync.Pool
}

// NewPool returns a pool of buffers of size bytes.
func NewPool(size int) *Pool {
	p := &Pool{size: size}
	p.p.New = func() any { b := make([]byte, size); return &b }
	return p
}

// Size is the pool's buffers' capacity.
func (p *Pool) Size() int { return p.size }

// Get returns a buffer of the pool, Size bytes long.
func (p *Pool) Get() []byte { return *p.p.Get().(*[]byte) }

// Copy returns b in a buffer of the pool: b must be at most Size bytes.
func (p *Pool) Copy(b []byte) []byte {
	buf := p.Get()
	return buf[:copy(buf, b)]
}

// Put returns a buffer of the pool once it was used; a slice of another
// capacity is left alone, so a caller may hand back whatever it got.
func (p *Pool) Put(b []byte) {
	if cap(b) != p.size {
		return
	}
	b = b[:cap(b)]
	p.p.Put(&b)
}

// Only returns the bytes of field num of an encoded message that holds
// nothing else (that field, length-delimited, once).
func Only(data []byte, num protowire.Number) ([]byte, bool) {
	n, typ, l := protowire.ConsumeTag(data)
	if l < 0 || n != num || typ != protowire.BytesType {
		return nil, false
	}
	b, m := protowire.ConsumeBytes(data[l:])
	if m < 0 || l+m != len(data) {
		return nil, false
	}
	return b, true
}
