package sqlstore

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/runyard/runyard/internal/runners"
)

// fill sets every field reachable from v to a non-zero value: slices of
// one element, pointers to filled values.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	}
}

// shared returns the path of the first memory a and b share, or "".
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer, reflect.Map:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		if a.Kind() == reflect.Pointer {
			return shared(a.Elem(), b.Elem(), path+".*")
		}
	case reflect.Slice:
		if a.Len() == 0 {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		for i := range a.Len() {
			if p := shared(a.Index(i), b.Index(i), path+"[]"); p != "" {
				return p
			}
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if p := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
				return p
			}
		}
	}
	return ""
}

// TestRunnerDocClones: a runner document taken from the memo shares no
// memory with the remembered one and equals it, whatever fields the
// document types gain.
func TestRunnerDocClones(t *testing.T) {
	check := func(name string, orig any, clone any) {
		t.Helper()
		if p := shared(reflect.ValueOf(orig).Elem(), reflect.ValueOf(clone).Elem(), name); p != "" {
			t.Errorf("the clone shares %s with the remembered document: copy it in clone%s", p, name)
		}
		if !reflect.DeepEqual(reflect.ValueOf(orig).Elem().Interface(), reflect.ValueOf(clone).Elem().Interface()) {
			t.Errorf("the clone of %s differs from it", name)
		}
	}
	var spec runners.Spec
	fill(reflect.ValueOf(&spec).Elem())
	sc := cloneSpec(&spec)
	check("Spec", &spec, &sc)
	var status runners.Status
	fill(reflect.ValueOf(&status).Elem())
	stc := cloneStatus(&status)
	check("Status", &status, &stc)
	var report runners.Report
	fill(reflect.ValueOf(&report).Elem())
	rc := cloneReport(&report)
	check("Report", &report, &rc)
}

// TestDocMemo: a remembered document decodes as json.Unmarshal does, nil
// and empty lists alike, and changing what a read returned leaves the next
// read's value as it was.
func TestDocMemo(t *testing.T) {
	var m docMemo[runners.Report]
	m.clone = cloneReport
	for _, text := range []string{`{}`, `{"labels":[],"maxPods":3}`, `{"labels":["a","b"],"components":[{"name":"c","healthy":true}],"publicKey":"AQI="}`} {
		var want runners.Report
		if err := json.Unmarshal([]byte(text), &want); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			var got runners.Report
			if err := m.decode(text, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s decodes to %+v, want %+v", text, got, want)
			}
			if len(got.Labels) > 0 {
				got.Labels[0] = "changed"
			}
			got.MaxPods = 99
		}
	}
	var bad runners.Report
	if err := m.decode(`{"maxPods":"x"}`, &bad); err == nil {
		t.Fatal("a malformed document decodes")
	}
}
