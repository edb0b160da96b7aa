package connectapi

import (
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fillOneLevel sets every message field of m to an empty message and gives
// every list of messages one empty element, down to depth levels, so that
// empty lists sit at every level of the answer.
func fillOneLevel(m protoreflect.Message, depth int) {
	if depth == 0 || wellKnown(m) {
		return
	}
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Message() == nil || fd.IsMap() || fd.ContainingOneof() != nil {
			continue
		}
		if fd.IsList() {
			l := m.Mutable(fd).List()
			e := l.NewElement()
			fillOneLevel(e.Message(), depth-1)
			l.Append(e)
			continue
		}
		sub := m.Mutable(fd).Message()
		if fd.Message().FullName() == "google.protobuf.Timestamp" {
			m.Set(fd, protoreflect.ValueOfMessage(timestamppb.New(timestamppb.Now().AsTime()).ProtoReflect()))
			continue
		}
		fillOneLevel(sub, depth-1)
	}
}

// collectionProblems lists what obj, the JSON of m, gets wrong: a list or
// map of the response itself (top) that is missing, or an empty list or map
// deeper in it that is written (the vendor's SDK helpers take a present
// status.failureMessage, even [], for a failure).
func collectionProblems(path string, m protoreflect.Message, obj map[string]any, top bool) []string {
	if wellKnown(m) {
		return nil
	}
	var out []string
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		key := path + "." + fd.JSONName()
		v, ok := obj[fd.JSONName()]
		empty := (fd.IsList() && m.Get(fd).List().Len() == 0) || (fd.IsMap() && m.Get(fd).Map().Len() == 0)
		switch {
		case empty && top && !ok:
			out = append(out, key+" missing")
		case empty && !top && ok:
			out = append(out, key+" written although empty")
		case fd.IsList() && fd.Message() != nil:
			arr, _ := v.([]any)
			l := m.Get(fd).List()
			for j := range min(l.Len(), len(arr)) {
				sub, _ := arr[j].(map[string]any)
				out = append(out, collectionProblems(key, l.Get(j).Message(), sub, false)...)
			}
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap() && m.Has(fd):
			sub, _ := v.(map[string]any)
			out = append(out, collectionProblems(key, m.Get(fd).Message(), sub, false)...)
		}
	}
	return out
}

// TestStrictJSON_EmptyCollections: every response message of the API, with
// messages nested three levels deep, is written with its own lists and maps
// and without the empty ones of the messages in it, and reads back equal.
func TestStrictJSON_EmptyCollections(t *testing.T) {
	var n int
	for _, sd := range APIServices() {
		for i := range sd.Methods().Len() {
			out := sd.Methods().Get(i).Output()
			mt, err := protoregistry.GlobalTypes.FindMessageByName(out.FullName())
			if err != nil {
				t.Fatal(err)
			}
			for _, depth := range []int{0, 3} {
				m := mt.New()
				fillOneLevel(m, depth)
				b, err := strictJSON{}.Marshal(m.Interface())
				if err != nil {
					t.Fatalf("%s: %v", out.FullName(), err)
				}
				var obj map[string]any
				if err := json.Unmarshal(b, &obj); err != nil {
					t.Fatalf("%s: %v in %s", out.FullName(), err, b)
				}
				for _, p := range collectionProblems(string(out.Name()), m, obj, true) {
					t.Errorf("%s", p)
				}
				back := mt.New().Interface()
				if err := (strictJSON{}).Unmarshal(b, back); err != nil {
					t.Fatalf("%s: read back: %v in %s", out.FullName(), err, b)
				}
				if !proto.Equal(back, m.Interface()) {
					t.Errorf("%s: read back differs: %s", out.FullName(), b)
				}
				n++
			}
		}
	}
	t.Logf("%d messages checked", n)
}
