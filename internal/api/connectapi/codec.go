package connectapi

import (
	"errors"
	"fmt"
	"strings"

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
// empty list and map of m and of the messages in it present: one pass over b
// alongside m that inserts the missing keys right after the opening brace of
// their object and copies everything else as protojson wrote it.
func addEmptyCollections(b []byte, m protoreflect.Message) ([]byte, error) {
	s := &splicer{in: b, out: make([]byte, 0, len(b)+64)}
	if err := s.object(m); err != nil {
		return nil, fmt.Errorf("add empty lists to the JSON of %s: %w", m.Descriptor().FullName(), err)
	}
	return append(s.out, s.in[s.copied:]...), nil
}

// splicer reads in at i; out holds in[:copied] plus what was inserted.
type splicer struct {
	in, out   []byte
	i, copied int
}

var errBadJSON = errors.New("unexpected JSON from protojson")

func (s *splicer) space() {
	for s.i < len(s.in) && (s.in[s.i] == ' ' || s.in[s.i] == '\t' || s.in[s.i] == '\n' || s.in[s.i] == '\r') {
		s.i++
	}
}

func (s *splicer) expect(c byte) error {
	s.space()
	if s.i >= len(s.in) || s.in[s.i] != c {
		return errBadJSON
	}
	s.i++
	return nil
}

// str skips a string and returns its raw content.
func (s *splicer) str() (string, error) {
	if err := s.expect('"'); err != nil {
		return "", err
	}
	start := s.i
	for ; s.i < len(s.in); s.i++ {
		switch s.in[s.i] {
		case '\\':
			s.i++
		case '"':
			s.i++
			return string(s.in[start : s.i-1]), nil
		}
	}
	return "", errBadJSON
}

// skip skips one value.
func (s *splicer) skip() error {
	s.space()
	if s.i >= len(s.in) {
		return errBadJSON
	}
	switch s.in[s.i] {
	case '"':
		_, err := s.str()
		return err
	case '{', '[':
		depth := 0
		for ; s.i < len(s.in); s.i++ {
			switch s.in[s.i] {
			case '"':
				if _, err := s.str(); err != nil {
					return err
				}
				s.i--
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					s.i++
					return nil
				}
			}
		}
		return errBadJSON
	}
	for s.i < len(s.in) && !strings.ContainsRune(",}] \t\r\n", rune(s.in[s.i])) {
		s.i++
	}
	return nil
}

// value reads the value of a message-typed field: it descends only where
// something is missing.
func (s *splicer) value(m protoreflect.Message) error {
	if !hasEmptyCollection(m) {
		return s.skip()
	}
	return s.object(m)
}

// object reads the object of m, inserting m's missing lists and maps.
func (s *splicer) object(m protoreflect.Message) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	fields := m.Descriptor().Fields()
	var insert []byte
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case fd.IsList() && m.Get(fd).List().Len() == 0:
			insert = append(append(append(insert, '"'), fd.JSONName()...), `":[],`...)
		case fd.IsMap() && m.Get(fd).Map().Len() == 0:
			insert = append(append(append(insert, '"'), fd.JSONName()...), `":{},`...)
		}
	}
	s.space()
	if len(insert) > 0 {
		if s.i < len(s.in) && s.in[s.i] == '}' {
			insert = insert[:len(insert)-1] // an empty object: no comma
		}
		s.out = append(append(s.out, s.in[s.copied:s.i]...), insert...)
		s.copied = s.i
	}
	for {
		s.space()
		if s.i < len(s.in) && s.in[s.i] == '}' {
			s.i++
			return nil
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := s.field(m, fields.ByJSONName(key)); err != nil {
			return err
		}
		s.space()
		if s.i < len(s.in) && s.in[s.i] == ',' {
			s.i++
		}
	}
}

// field reads the value of fd in m.
func (s *splicer) field(m protoreflect.Message, fd protoreflect.FieldDescriptor) error {
	switch {
	case fd == nil:
		return s.skip()
	case fd.IsMap():
		if fd.MapValue().Message() == nil {
			return s.skip()
		}
		values := map[string]protoreflect.Message{}
		m.Get(fd).Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			values[k.String()] = v.Message()
			return true
		})
		if err := s.expect('{'); err != nil {
			return err
		}
		for {
			s.space()
			if s.i < len(s.in) && s.in[s.i] == '}' {
				s.i++
				return nil
			}
			key, err := s.str()
			if err != nil {
				return err
			}
			if err := s.expect(':'); err != nil {
				return err
			}
			if v, ok := values[key]; ok {
				err = s.value(v)
			} else {
				err = s.skip()
			}
			if err != nil {
				return err
			}
			s.space()
			if s.i < len(s.in) && s.in[s.i] == ',' {
				s.i++
			}
		}
	case fd.Message() == nil:
		return s.skip()
	case fd.IsList():
		l := m.Get(fd).List()
		if err := s.expect('['); err != nil {
			return err
		}
		for j := 0; ; j++ {
			s.space()
			if s.i < len(s.in) && s.in[s.i] == ']' {
				s.i++
				return nil
			}
			var err error
			if j < l.Len() && !wellKnown(l.Get(j).Message()) {
				err = s.value(l.Get(j).Message())
			} else {
				err = s.skip()
			}
			if err != nil {
				return err
			}
			s.space()
			if s.i < len(s.in) && s.in[s.i] == ',' {
				s.i++
			}
		}
	default:
		sub := m.Get(fd).Message()
		if wellKnown(sub) {
			return s.skip()
		}
		return s.value(sub)
	}
}
