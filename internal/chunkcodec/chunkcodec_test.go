package chunkcodec

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestOnly(t *testing.T) {
	field := func(num protowire.Number, b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
	}
	data := []byte("chunk")
	for _, tc := range []struct {
		name string
		enc  []byte
		ok   bool
	}{
		{"the field alone", field(2, data), true},
		{"another field", field(1, data), false},
		{"the field and more", append(field(2, data), field(3, []byte("x"))...), false},
		{"the field twice", append(field(2, data), field(2, data)...), false},
		{"a varint", protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 7), false},
		{"cut short", field(2, data)[:4], false},
		{"empty", nil, false},
	} {
		got, ok := Only(tc.enc, 2)
		if ok != tc.ok || (ok && !bytes.Equal(got, data)) {
			t.Errorf("%s: Only = %q, %v; want ok %v", tc.name, got, ok, tc.ok)
		}
	}
}

func TestPool(t *testing.T) {
	p := NewPool(8)
	b := p.Copy([]byte("abc"))
	if string(b) != "abc" || cap(b) != 8 {
		t.Fatalf("Copy = %q (cap %d)", b, cap(b))
	}
	p.Put(b)
	p.Put(make([]byte, 3)) // another capacity: left alone
	if c := p.Copy(nil); cap(c) != 8 {
		t.Fatalf("a buffer of capacity %d came out of the pool", cap(c))
	}
}
