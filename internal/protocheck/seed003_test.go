package protocheck

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
)

// Seed 003 documents EnvironmentAutomationService in the vendor's SDK
// reference format: per method a flattened YAML request example, a curl
// example, the body/query parameters and the returned fields as a bullet list
// (one field per line in the readable copy, nesting implied by order), and a
// JSON response example; then "Domain Types" blocks in the same bullet format.
// testdata holds verbatim copies of the raw seed and of its readable form.
//
// The checks, all against the generated descriptors:
//   - the seed's methods are exactly the service's methods;
//   - every documented field exists under its JSON name in the right message,
//     with a compatible shape (scalar/list/map, string/bool/number/message,
//     named type), and every documented enum value exists;
//   - conversely, every field and enum value of the service's gitpod.v1
//     messages is documented, so the protos carry nothing the seed lacks;
//   - every JSON response example and every request example (the curl bodies,
//     and the YAML examples transcribed to JSON in testdata) parses with
//     protojson without discarding unknown fields.

var (
	methodHeadingRE = regexp.MustCompile("^## (\\w+) \\*\\*post\\*\\* `/gitpod\\.v1\\.EnvironmentAutomationService/(\\w+)`")
	yamlRE          = regexp.MustCompile("```yaml(.*?)```")
	jsonRE          = regexp.MustCompile("```json(.*?)```")
	curlBodyRE      = regexp.MustCompile(`-d '([^']*)'`)
	fieldBulletRE   = regexp.MustCompile("^- `([a-z]\\w*): ([^`]*)`")
	valueBulletRE   = regexp.MustCompile("^- `\"([^\"]*)\"`")
	typeBulletRE    = regexp.MustCompile("^- `([A-Z]\\w*) (object \\{[^}]*\\}|= [^`]*)`")
	listedFieldsRE  = regexp.MustCompile(`object \{([^}]*)\}`)
	namedTypeRE     = regexp.MustCompile(`^[A-Z]\w*$`)
	yamlKeyRE       = regexp.MustCompile(`([A-Za-z][\w-]*):`)
	quotedRE        = regexp.MustCompile(`"[^"]*"`)
)

// domainTypes maps the SDK's names of seed 003's domain types to gitpod.v1
// messages and enums. The SDK names responses after its resource methods
// (create, retrieve, ...), not after the RPCs.
var domainTypes = map[string]string{
	"AutomationsFile":           "AutomationsFile",
	"AutomationUpsertResponse":  "UpsertAutomationsFileResponse",
	"Service":                   "Service",
	"ServiceMetadata":           "ServiceMetadata",
	"ServicePhase":              "ServicePhase",
	"ServiceRole":               "ServiceRole",
	"ServiceSpec":               "ServiceSpec",
	"ServiceStatus":             "ServiceStatus",
	"ServiceCreateResponse":     "CreateServiceResponse",
	"ServiceDeleteResponse":     "DeleteServiceResponse",
	"ServiceRetrieveResponse":   "GetServiceResponse",
	"ServiceStartResponse":      "StartServiceResponse",
	"ServiceStopResponse":       "StopServiceResponse",
	"ServiceUpdateResponse":     "UpdateServiceResponse",
	"TaskCreateResponse":        "CreateTaskResponse",
	"TaskDeleteResponse":        "DeleteTaskResponse",
	"TaskRetrieveResponse":      "GetTaskResponse",
	"TaskStartResponse":         "StartTaskResponse",
	"TaskUpdateResponse":        "UpdateTaskResponse",
	"ExecutionRetrieveResponse": "GetTaskExecutionResponse",
	"ExecutionStopResponse":     "StopTaskExecutionResponse",
}

// seedDoc is seed 003 split into the parts the checks use.
type seedDoc struct {
	methods []*seedMethod // in document order
	domain  []*seedBlock
}

type seedMethod struct {
	name      string
	yaml      []string // flattened YAML request examples
	curl      []string // curl -d request bodies
	responses []string // JSON response examples
	body      []string // bullets under "Body Parameters"
	query     []string // bullets under "Query Parameters"
	returns   []string // bullets under "Returns"
}

// seedBlock is one domain type: its header bullet, then its fields or values.
type seedBlock struct {
	heading string
	bullets []string
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func parseSeed003(t *testing.T) *seedDoc {
	t.Helper()
	raw := readTestdata(t, "seed003.txt")
	readable := readTestdata(t, "seed003.readable.md")
	// The readable form only breaks the raw seed's single line into lines, so
	// parsing it checks the raw seed.
	if strings.ReplaceAll(readable, "\n", " ") != raw {
		t.Fatal("seed003.readable.md is not seed003.txt with line breaks")
	}

	doc := &seedDoc{}
	var m *seedMethod
	var list *[]string // where bullets go
	inDomain := false
	for _, line := range strings.Split(readable, "\n") {
		switch {
		case strings.HasPrefix(line, "# "):
			m, list, inDomain = nil, nil, false
		case line == "## Domain Types":
			m, list, inDomain = nil, nil, true
		case strings.HasPrefix(line, "## "):
			h := methodHeadingRE.FindStringSubmatch(line)
			if h == nil || h[1] != h[2] {
				t.Fatalf("unexpected method heading %.120q", line)
			}
			m = &seedMethod{name: h[1]}
			doc.methods = append(doc.methods, m)
			list, inDomain = nil, false
		case inDomain && strings.HasPrefix(line, "### "):
			b := &seedBlock{heading: strings.TrimPrefix(line, "### ")}
			doc.domain = append(doc.domain, b)
			list = &b.bullets
		case strings.HasPrefix(line, "- `") && list != nil:
			*list = append(*list, line)
		case m == nil:
			t.Fatalf("seed line outside a method: %.120q", line)
		case strings.HasPrefix(line, "### Examples"):
			for _, s := range yamlRE.FindAllStringSubmatch(line, -1) {
				m.yaml = append(m.yaml, strings.TrimSpace(s[1]))
			}
			list = nil
		case line == "### Body Parameters":
			list = &m.body
		case line == "### Query Parameters":
			list = &m.query
		case line == "### Returns":
			list = &m.returns
		case strings.HasPrefix(line, "### Example "):
			for _, s := range curlBodyRE.FindAllStringSubmatch(line, -1) {
				m.curl = append(m.curl, s[1])
			}
			list = nil
		case strings.HasPrefix(line, "#### Response"):
			for _, s := range jsonRE.FindAllStringSubmatch(line, -1) {
				m.responses = append(m.responses, s[1])
			}
			list = nil
		default:
			t.Fatalf("unrecognised seed line %.120q", line)
		}
	}
	return doc
}

func automationService(t *testing.T) protoreflect.ServiceDescriptor {
	t.Helper()
	sd := gitpodv1.File_gitpod_v1_environment_automation_proto.Services().ByName("EnvironmentAutomationService")
	if sd == nil {
		t.Fatal("no EnvironmentAutomationService in environment_automation.proto")
	}
	return sd
}

func TestSeed003_Methods(t *testing.T) {
	doc := parseSeed003(t)
	sd := automationService(t)

	var inSeed, inProto []string
	for _, m := range doc.methods {
		inSeed = append(inSeed, m.name)
	}
	for i := 0; i < sd.Methods().Len(); i++ {
		inProto = append(inProto, string(sd.Methods().Get(i).Name()))
	}
	slices.Sort(inSeed)
	slices.Sort(inProto)
	if !slices.Equal(inSeed, inProto) {
		t.Errorf("methods differ:\nseed:  %v\nproto: %v", inSeed, inProto)
	}
	if got, want := len(inSeed), 17; got != want {
		t.Errorf("seed methods = %d, want %d", got, want)
	}
}

// checker walks seed bullet lists against message descriptors and records
// which fields and enum values the seed documents.
type checker struct {
	t          *testing.T
	seenFields map[protoreflect.FullName]bool
	seenValues map[protoreflect.FullName]bool
}

func newChecker(t *testing.T) *checker {
	return &checker{
		t:          t,
		seenFields: map[protoreflect.FullName]bool{},
		seenValues: map[protoreflect.FullName]bool{},
	}
}

// ours reports whether a message is one of the gitpod.v1 messages whose
// fields the seed lists; well-known types such as Timestamp appear in the
// seed as plain strings.
func ours(md protoreflect.MessageDescriptor) bool {
	return md != nil && md.ParentFile().Package() == "gitpod.v1"
}

// valueMessage is the message a field's values are (for a map, its values'),
// or nil.
func valueMessage(fd protoreflect.FieldDescriptor) protoreflect.MessageDescriptor {
	if fd.IsMap() {
		return fd.MapValue().Message()
	}
	return fd.Message()
}

// walk checks a bullet list whose top-level fields belong to root. The seed
// lists fields depth first without marking depth, so a field is looked up in
// the innermost open message first and then in its enclosing ones.
func (c *checker) walk(where string, root protoreflect.MessageDescriptor, bullets []string) {
	stack := []protoreflect.MessageDescriptor{root}
	var last protoreflect.FieldDescriptor
	for _, b := range bullets {
		if v := valueBulletRE.FindStringSubmatch(b); v != nil {
			c.checkValue(where, last, v[1])
			continue
		}
		f := fieldBulletRE.FindStringSubmatch(b)
		if f == nil {
			c.t.Errorf("%s: unrecognised bullet %.100q", where, b)
			continue
		}
		name, typ := f[1], f[2]
		var fd protoreflect.FieldDescriptor
		i := len(stack) - 1
		for ; i >= 0 && fd == nil; i-- {
			fd = stack[i].Fields().ByJSONName(name)
		}
		last = fd
		if fd == nil {
			// Keep the stack: the next bullets most likely belong where this
			// one should have.
			c.t.Errorf("%s: field %q is in the seed but not in %s or the messages enclosing it", where, name, stack[len(stack)-1].FullName())
			continue
		}
		stack = stack[:i+2]
		c.seenFields[fd.FullName()] = true
		c.checkShape(where, fd, typ)
		if child := valueMessage(fd); ours(child) {
			c.checkListed(where, child, typ)
			stack = append(stack, child)
		}
	}
}

// checkListed checks the field names an "object { a, b, 3 more }" type lists.
func (c *checker) checkListed(where string, md protoreflect.MessageDescriptor, typ string) {
	l := listedFieldsRE.FindStringSubmatch(typ)
	if l == nil {
		return
	}
	for _, name := range strings.Split(l[1], ",") {
		name = strings.TrimSpace(name)
		if name == "" || strings.HasSuffix(name, " more") {
			continue
		}
		fd := md.Fields().ByJSONName(name)
		if fd == nil {
			c.t.Errorf("%s: %s has no field %q that the seed lists", where, md.FullName(), name)
			continue
		}
		c.seenFields[fd.FullName()] = true
	}
}

func (c *checker) checkValue(where string, fd protoreflect.FieldDescriptor, value string) {
	switch {
	case fd == nil:
		c.t.Errorf("%s: value %q follows no known field", where, value)
	case fd.Kind() == protoreflect.EnumKind:
		c.checkEnumValue(where, fd.Enum(), value)
	case fd.Kind() == protoreflect.StringKind:
		// A string field documented with its allowed literals (role, and
		// triggeredBy in the automations file); nothing to check.
	default:
		c.t.Errorf("%s: value %q documented for %s, which is neither an enum nor a string", where, value, fd.FullName())
	}
}

func (c *checker) checkEnumValue(where string, ed protoreflect.EnumDescriptor, value string) {
	v := ed.Values().ByName(protoreflect.Name(value))
	if v == nil {
		c.t.Errorf("%s: enum %s has no value %s", where, ed.FullName(), value)
		return
	}
	c.seenValues[v.FullName()] = true
}

// checkShape compares the seed's type of a field ("optional array of string",
// "map[object {...}]", "ServicePhase", ...) with the field's descriptor.
func (c *checker) checkShape(where string, fd protoreflect.FieldDescriptor, typ string) {
	typ = strings.TrimPrefix(typ, "optional ")
	elem := fd
	switch {
	case strings.HasPrefix(typ, "map["):
		if !fd.IsMap() {
			c.t.Errorf("%s: %s is a map in the seed", where, fd.FullName())
			return
		}
		typ, elem = strings.TrimSuffix(strings.TrimPrefix(typ, "map["), "]"), fd.MapValue()
	case strings.HasPrefix(typ, "array of "):
		if !fd.IsList() {
			c.t.Errorf("%s: %s is a list in the seed", where, fd.FullName())
			return
		}
		typ = strings.TrimPrefix(typ, "array of ")
	case fd.IsList() || fd.IsMap():
		c.t.Errorf("%s: %s is a single %q in the seed", where, fd.FullName(), typ)
		return
	}
	if !elementMatches(elem, typ) {
		c.t.Errorf("%s: %s has kind %s (%s), the seed says %q", where, fd.FullName(), elem.Kind(), elemTypeName(elem), typ)
	}
}

func elemTypeName(fd protoreflect.FieldDescriptor) protoreflect.FullName {
	switch {
	case fd.Message() != nil:
		return fd.Message().FullName()
	case fd.Enum() != nil:
		return fd.Enum().FullName()
	}
	return ""
}

func elementMatches(fd protoreflect.FieldDescriptor, typ string) bool {
	k := fd.Kind()
	switch {
	case typ == "string":
		// The SDK types 64-bit integers (specVersion, statusVersion) and
		// Timestamps as strings, which is also their protojson form.
		switch k {
		case protoreflect.StringKind, protoreflect.Int64Kind, protoreflect.Uint64Kind,
			protoreflect.Sint64Kind, protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
			return true
		case protoreflect.MessageKind:
			n := fd.Message().FullName()
			return n == "google.protobuf.Timestamp" || n == "google.protobuf.Duration"
		}
		return false
	case typ == "boolean":
		return k == protoreflect.BoolKind
	case typ == "number":
		switch k {
		case protoreflect.Int32Kind, protoreflect.Uint32Kind, protoreflect.Sint32Kind,
			protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind, protoreflect.DoubleKind:
			return true
		}
		return false
	case typ == "unknown", strings.HasPrefix(typ, "object"):
		// "unknown" is how the SDK renders an empty message (RunsOn.machine).
		return k == protoreflect.MessageKind
	case strings.HasPrefix(typ, `"`):
		return k == protoreflect.StringKind || k == protoreflect.EnumKind
	case namedTypeRE.MatchString(typ):
		switch k {
		case protoreflect.MessageKind:
			return string(fd.Message().Name()) == typ
		case protoreflect.EnumKind:
			return string(fd.Enum().Name()) == typ
		}
	}
	return false
}

func TestSeed003_Fields(t *testing.T) {
	doc := parseSeed003(t)
	sd := automationService(t)
	c := newChecker(t)

	for _, m := range doc.methods {
		md := sd.Methods().ByName(protoreflect.Name(m.name))
		if md == nil {
			continue // reported by TestSeed003_Methods
		}
		c.walk(m.name+" body", md.Input(), m.body)
		c.walk(m.name+" returns", md.Output(), m.returns)
		if len(m.query) > 0 {
			// The query parameters are the pagination fields, which the SDKs'
			// auto-pager sends in the URL.
			p := md.Input().Fields().ByJSONName("pagination")
			if p == nil || p.Message() == nil {
				t.Errorf("%s has query parameters but its request has no pagination", m.name)
				continue
			}
			c.walk(m.name+" query", p.Message(), m.query)
		}
	}

	for _, b := range doc.domain {
		c.checkDomainType(b)
	}

	// Conversely, everything in the protos is in the seed.
	enumsDone := map[protoreflect.FullName]bool{}
	for _, fd := range reachableFields(sd) {
		if !c.seenFields[fd.FullName()] {
			t.Errorf("field %s (%s) is not documented in seed 003", fd.FullName(), fd.JSONName())
		}
		if fd.Kind() == protoreflect.EnumKind && !enumsDone[fd.Enum().FullName()] {
			enumsDone[fd.Enum().FullName()] = true
			vals := fd.Enum().Values()
			for i := 0; i < vals.Len(); i++ {
				if v := vals.Get(i); !c.seenValues[v.FullName()] {
					t.Errorf("enum value %s is not documented in seed 003", v.Name())
				}
			}
		}
	}
}

func (c *checker) checkDomainType(b *seedBlock) {
	where := "domain type " + b.heading
	if len(b.bullets) == 0 {
		c.t.Errorf("%s: empty", where)
		return
	}
	h := typeBulletRE.FindStringSubmatch(b.bullets[0])
	if h == nil {
		c.t.Errorf("%s: unrecognised header %.100q", where, b.bullets[0])
		return
	}
	protoName, ok := domainTypes[h[1]]
	if !ok {
		c.t.Errorf("%s: no gitpod.v1 type known for the SDK type %s", where, h[1])
		return
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName("gitpod.v1." + protoName))
	if err != nil {
		c.t.Errorf("%s: %v", where, err)
		return
	}
	switch d := d.(type) {
	case protoreflect.MessageDescriptor:
		if h[2] == "= unknown" {
			// An empty response message.
			if d.Fields().Len() != 0 || len(b.bullets) > 1 {
				c.t.Errorf("%s: the seed has no fields, %s has %d", where, d.FullName(), d.Fields().Len())
			}
			return
		}
		c.checkListed(where, d, h[2])
		c.walk(where, d, b.bullets[1:])
	case protoreflect.EnumDescriptor:
		for _, v := range b.bullets[1:] {
			m := valueBulletRE.FindStringSubmatch(v)
			if m == nil {
				c.t.Errorf("%s: unrecognised enum bullet %.100q", where, v)
				continue
			}
			c.checkEnumValue(where, d, m[1])
		}
	default:
		c.t.Errorf("%s: %s is neither a message nor an enum", where, d.FullName())
	}
}

// reachableFields returns the fields of every gitpod.v1 message the service's
// requests and responses contain, each once.
func reachableFields(sd protoreflect.ServiceDescriptor) []protoreflect.FieldDescriptor {
	var out []protoreflect.FieldDescriptor
	done := map[protoreflect.FullName]bool{}
	var visit func(md protoreflect.MessageDescriptor)
	visit = func(md protoreflect.MessageDescriptor) {
		if !ours(md) || done[md.FullName()] {
			return
		}
		done[md.FullName()] = true
		for i := 0; i < md.Fields().Len(); i++ {
			fd := md.Fields().Get(i)
			out = append(out, fd)
			if child := valueMessage(fd); child != nil {
				visit(child)
			}
		}
	}
	for i := 0; i < sd.Methods().Len(); i++ {
		visit(sd.Methods().Get(i).Input())
		visit(sd.Methods().Get(i).Output())
	}
	return out
}

func TestSeed003_ResponseExamples(t *testing.T) {
	doc := parseSeed003(t)
	sd := automationService(t)
	n := 0
	for _, m := range doc.methods {
		md := sd.Methods().ByName(protoreflect.Name(m.name))
		if md == nil {
			continue
		}
		for _, body := range m.responses {
			checkExample(t, m.name+" response", md.Output(), body)
			n++
		}
	}
	// Every method's section ends with a response example.
	if got, want := n, len(doc.methods); got != want {
		t.Errorf("response examples = %d, want %d", got, want)
	}
}

// yamlExample is a YAML request example of the seed with its JSON form,
// transcribed by hand: the seed flattens the YAML onto one line, which loses
// the indentation YAML needs.
type yamlExample struct {
	Method string          `json:"method"`
	YAML   string          `json:"yaml"`
	JSON   json.RawMessage `json:"json"`
}

func TestSeed003_RequestExamples(t *testing.T) {
	doc := parseSeed003(t)
	sd := automationService(t)

	var fixtures []yamlExample
	if err := json.Unmarshal([]byte(readTestdata(t, "seed003_yaml_examples.json")), &fixtures); err != nil {
		t.Fatal(err)
	}

	i := 0
	for _, m := range doc.methods {
		md := sd.Methods().ByName(protoreflect.Name(m.name))
		if md == nil {
			continue
		}
		for _, body := range m.curl {
			checkExample(t, m.name+" curl body", md.Input(), body)
		}
		for _, y := range m.yaml {
			if i >= len(fixtures) {
				t.Fatalf("%s: YAML example %.60q has no transcription in testdata", m.name, y)
			}
			f := fixtures[i]
			i++
			if f.Method != m.name || f.YAML != y {
				t.Fatalf("testdata example %d (%s) does not match the seed's next example (%s):\n%s\n%s", i, f.Method, m.name, f.YAML, y)
			}
			// The transcription uses exactly the keys the YAML has.
			yamlKeys := yamlKeyRE.FindAllStringSubmatch(quotedRE.ReplaceAllString(y, ""), -1)
			want := map[string]bool{}
			for _, k := range yamlKeys {
				want[k[1]] = true
			}
			var v any
			if err := json.Unmarshal(f.JSON, &v); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			collectKeys(v, got)
			if !mapsEqual(got, want) {
				t.Errorf("%s: transcription keys %v, YAML keys %v", m.name, sortedKeys(got), sortedKeys(want))
			}
			checkExample(t, m.name+" YAML example", md.Input(), string(f.JSON))
		}
	}
	if i != len(fixtures) {
		t.Errorf("testdata has %d YAML examples, the seed %d", len(fixtures), i)
	}
}

func collectKeys(v any, into map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			into[k] = true
			collectKeys(e, into)
		}
	case []any:
		for _, e := range v {
			collectKeys(e, into)
		}
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkExample parses a JSON example into md with protojson, rejecting
// unknown fields. The SDK's generated examples set every member of a oneof at
// once ("triggeredBy": [{"manual": true, "prebuild": true, ...}], "value" next
// to "valueFrom"), which no protojson reader accepts; so the example is parsed
// once per member, variant k keeping the k-th member present at each oneof
// (or the last one where fewer are present). Together the variants cover
// every member the example shows.
func checkExample(t *testing.T, what string, md protoreflect.MessageDescriptor, body string) {
	t.Helper()
	var v any
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Errorf("%s: not JSON: %v", what, err)
		return
	}
	for k, n := 0, 1; k < n; k++ {
		variant, members := reshape(v, md, k)
		n = max(n, members)
		b, err := json.Marshal(variant)
		if err != nil {
			t.Fatal(err)
		}
		msg := dynamicpb.NewMessage(md)
		if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(b, msg); err != nil {
			t.Errorf("%s (oneof variant %d): %v\n%s", what, k, err, b)
		}
	}
}

// reshape returns a copy of the JSON value v of message md that keeps only
// the k-th present member of each oneof, and the largest number of members
// present at any one oneof. It also replaces the SDK's placeholder for a
// 64-bit integer, the field's own name ("specVersion": "specVersion"), with
// "0": protojson needs a decimal string there.
func reshape(v any, md protoreflect.MessageDescriptor, k int) (any, int) {
	obj, ok := v.(map[string]any)
	if !ok || !ours(md) {
		return v, 1
	}
	out := make(map[string]any, len(obj))
	for key, val := range obj {
		out[key] = val
	}
	most := 1
	for i := 0; i < md.Oneofs().Len(); i++ {
		od := md.Oneofs().Get(i)
		if od.IsSynthetic() {
			continue
		}
		var present []string
		for j := 0; j < od.Fields().Len(); j++ {
			if name := od.Fields().Get(j).JSONName(); out[name] != nil {
				present = append(present, name)
			}
		}
		most = max(most, len(present))
		for j, name := range present {
			if j != min(k, len(present)-1) {
				delete(out, name)
			}
		}
	}
	for key, val := range out {
		fd := md.Fields().ByJSONName(key)
		if fd == nil {
			continue // left for protojson to reject
		}
		var n int
		out[key], n = reshapeField(fd, val, k)
		most = max(most, n)
	}
	return out, most
}

func reshapeField(fd protoreflect.FieldDescriptor, v any, k int) (any, int) {
	switch {
	case fd.IsList():
		arr, ok := v.([]any)
		if !ok {
			return v, 1
		}
		out, most := make([]any, len(arr)), 1
		for i, e := range arr {
			var n int
			out[i], n = reshapeValue(fd, e, k)
			most = max(most, n)
		}
		return out, most
	case fd.IsMap():
		m, ok := v.(map[string]any)
		if !ok {
			return v, 1
		}
		out, most := make(map[string]any, len(m)), 1
		for key, e := range m {
			var n int
			out[key], n = reshapeValue(fd.MapValue(), e, k)
			most = max(most, n)
		}
		return out, most
	}
	return reshapeValue(fd, v, k)
}

func reshapeValue(fd protoreflect.FieldDescriptor, v any, k int) (any, int) {
	if fd.Kind() == protoreflect.MessageKind {
		return reshape(v, fd.Message(), k)
	}
	switch fd.Kind() {
	case protoreflect.Int64Kind, protoreflect.Uint64Kind, protoreflect.Sint64Kind,
		protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		if s, ok := v.(string); ok && s == fd.JSONName() {
			if _, err := strconv.ParseInt(s, 10, 64); err != nil {
				return "0", 1
			}
		}
	}
	return v, 1
}
