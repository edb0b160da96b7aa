package protocheck

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/runyard/runyard/gen/gitpod/v1" // registers the protos
)

// TestVendorAPI_EveryMethodDeclared holds the protos to the vendor's method
// list: every method an SDK may call is declared (and so answers, at worst,
// unimplemented: connectapi's TestEveryMethod_AnswersConnect).
func TestVendorAPI_EveryMethodDeclared(t *testing.T) {
	f, err := os.Open("testdata/vendor_procedures.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		proc := strings.TrimSpace(sc.Text())
		if proc == "" || strings.HasPrefix(proc, "#") {
			continue
		}
		n++
		svc, method, _ := strings.Cut(strings.TrimPrefix(proc, "/"), "/")
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
		var md protoreflect.MethodDescriptor
		if err == nil {
			md = d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(method))
		}
		if md == nil {
			t.Errorf("%s is not declared in proto/gitpod/v1", proc)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 170 {
		t.Fatalf("only %d procedures in testdata/vendor_procedures.txt", n)
	}
}
