package connectapi

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// strictJSON is connect-go's JSON codec without its leniency: an unknown field
// is an error naming it, not silently dropped, so a typo in a request never
// passes as a default value.
//
// It also writes every list and map of a message it writes, [] and {} when
// empty. protojson leaves empty repeated fields out (proto3 cannot tell an
// empty list from an unset one), but the vendor's SDKs declare the lists of
// responses as always present: a Python `for s in page.secrets` fails on
// {"pagination":{}}.
type strictJSON struct{}

func (strictJSON) Name() string { return "json" }

func (strictJSON) Marshal(msg any) ([]byte, error) {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, errNotProto(msg)
	}
	b, err := protojson.MarshalOptions{}.Marshal(m)
	if err != nil || !hasEmptyCollection(m.ProtoReflect()) {
		return b, err
	}
	return addEmptyCollections(b, m.ProtoReflect())
}

func (strictJSON) Unmarshal(data []byte, msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return errNotProto(msg)
	}
	if len(data) == 0 {
		// An empty body is an empty message, as connect-go's own codec has it.
		proto.Reset(m)
		return nil
	}
	return protojson.UnmarshalOptions{DiscardUnknown: false}.Unmarshal(data, m)
}

func (c strictJSON) MarshalStable(msg any) ([]byte, error) { return c.Marshal(msg) }

func (strictJSON) IsBinary() bool { return false }

// wellKnown reports whether m has a JSON form of its own (Timestamp as a
// string, Struct as an object of its map, ...), which must not be touched.
func wellKnown(m protoreflect.Message) bool {
	return m.Descriptor().FullName().Parent() == "google.protobuf"
}

// hasEmptyCollection reports whether m, or a message in it, has an empty list
// or map that protojson leaves out. It keeps the common case (nothing empty)
// at protojson's own cost.
func hasEmptyCollection(m protoreflect.Message) bool {
	if wellKnown(m) {
		return false
	}
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case fd.IsList():
			l := m.Get(fd).List()
			if l.Len() == 0 {
				return true
			}
			if fd.Message() != nil {
				for j := range l.Len() {
					if hasEmptyCollection(l.Get(j).Message()) {
						return true
					}
				}
			}
		case fd.IsMap():
			mp := m.Get(fd).Map()
			if mp.Len() == 0 {
				return true
			}
			found := false
			if fd.MapValue().Message() != nil {
				mp.Range(func(_ protoreflect.MapKey, v protoreflect.Value) bool {
					found = hasEmptyCollection(v.Message())
					return !found
				})
			}
			if found {
				return true
			}
		case fd.Message() != nil && m.Has(fd):
			if hasEmptyCollection(m.Get(fd).Message()) {
				return true
			}
		}
	}
	return false
}

// addEmptyCollections rewrites b, protojson's encoding of m, with every
// empty list and map of m and of the messages in it present.
func addEmptyCollections(b []byte, m protoreflect.Message) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // numbers stay as protojson wrote them
	var obj map[string]any
	if err := d.Decode(&obj); err != nil {
		return nil, fmt.Errorf("reread JSON of %s: %w", m.Descriptor().FullName(), err)
	}
	fillCollections(obj, m)
	var out bytes.Buffer
	e := json.NewEncoder(&out)
	e.SetEscapeHTML(false)
	if err := e.Encode(obj); err != nil {
		return nil, fmt.Errorf("encode JSON of %s: %w", m.Descriptor().FullName(), err)
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

func fillCollections(obj map[string]any, m protoreflect.Message) {
	if obj == nil || wellKnown(m) {
		return
	}
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		key := fd.JSONName()
		switch {
		case fd.IsList():
			l := m.Get(fd).List()
			if l.Len() == 0 {
				obj[key] = []any{}
				continue
			}
			if fd.Message() == nil {
				continue
			}
			arr, _ := obj[key].([]any)
			for j := range min(l.Len(), len(arr)) {
				sub, _ := arr[j].(map[string]any)
				fillCollections(sub, l.Get(j).Message())
			}
		case fd.IsMap():
			mp := m.Get(fd).Map()
			if mp.Len() == 0 {
				obj[key] = map[string]any{}
				continue
			}
			if fd.MapValue().Message() == nil {
				continue
			}
			entries, _ := obj[key].(map[string]any)
			mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
				sub, _ := entries[k.String()].(map[string]any)
				fillCollections(sub, v.Message())
				return true
			})
		case fd.Message() != nil && m.Has(fd):
			sub, _ := obj[key].(map[string]any)
			fillCollections(sub, m.Get(fd).Message())
		}
	}
}
