package connectapi

import (
	"bytes"
	"errors"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// strictJSON is connect-go's JSON codec without its leniency: an unknown field
// is an error naming it, not silently dropped, so a typo in a request never
// passes as a default value.
//
// It also writes the lists and maps of the response itself, [] and {} when
// empty. protojson leaves empty repeated fields out (proto3 cannot tell an
// empty list from an unset one), but the vendor's SDKs declare a response's
// own lists (a page's items) as always present: a Python `for s in
// page.secrets` fails on {"pagination":{}}. Lists deeper in the answer stay
// out when empty, as the vendor's server leaves them: its SDK helpers read a
// present one as meaningful (waitForEnvironmentRunning takes any
// status.failureMessage, even [], for a failure).
type strictJSON struct{}

func (strictJSON) Name() string { return "json" }

func (strictJSON) Marshal(msg any) ([]byte, error) {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, errNotProto(msg)
	}
	b, err := protojson.MarshalOptions{}.Marshal(m)
	if err != nil {
		return b, err
	}
	insert := emptyCollections(m.ProtoReflect())
	if insert == nil {
		return b, nil
	}
	return addEmptyCollections(b, insert)
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

// emptyCollections lists the "key":[] and "key":{} entries of m's own
// empty lists and maps, which protojson leaves out; nil when there is none,
// the common case, which then costs protojson's own time only.
func emptyCollections(m protoreflect.Message) []byte {
	if wellKnown(m) {
		return nil
	}
	var insert []byte
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case fd.IsList() && m.Get(fd).List().Len() == 0:
			insert = append(append(append(insert, '"'), fd.JSONName()...), `":[],`...)
		case fd.IsMap() && m.Get(fd).Map().Len() == 0:
			insert = append(append(append(insert, '"'), fd.JSONName()...), `":{},`...)
		}
	}
	return insert
}

// addEmptyCollections inserts insert (emptyCollections of the message b
// encodes) right after the opening brace of b, protojson's encoding.
func addEmptyCollections(b, insert []byte) ([]byte, error) {
	open := bytes.IndexByte(b, '{')
	if open < 0 {
		return nil, errors.New("unexpected JSON from protojson: no object")
	}
	rest := bytes.TrimLeft(b[open+1:], " \t\r\n")
	if len(rest) > 0 && rest[0] == '}' {
		insert = insert[:len(insert)-1] // an empty object: no comma
	}
	out := make([]byte, 0, len(b)+len(insert))
	out = append(append(append(out, b[:open+1]...), insert...), b[open+1:]...)
	return out, nil
}
