package connectapi

import (
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// strictJSON is connect-go's JSON codec without its leniency: an unknown field
// is an error naming it, not silently dropped, so a typo in a request never
// passes as a default value.
type strictJSON struct{}

func (strictJSON) Name() string { return "json" }

func (strictJSON) Marshal(msg any) ([]byte, error) {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, errNotProto(msg)
	}
	return protojson.MarshalOptions{}.Marshal(m)
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
