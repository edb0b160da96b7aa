package connectapi_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/internal/api/connectapi"
	"github.com/runyard/runyard/internal/testutil"
)

// TestRunnerFastReads_AnswerAsConnect: GetRunner and ListRunners in binary
// protobuf are answered from the runner view's encodings (the fast path)
// exactly as connect-go answers them — status, headers, body, gzip — before
// and after a change, and every refusal (another organization, a missing
// scope, a revoked key) is connect-go's. A Connect-Timeout-Ms of "+60000"
// (valid for connect-go, never taken by the fast path) makes the reference
// answer.
func TestRunnerFastReads_AnswerAsConnect(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		admin := newClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
		var ids []string
		for range 12 { // a page of 12 is over the 1 KiB compression threshold
			ids = append(ids, mustCreateLinuxRunner(t, admin).GetRunnerId())
		}
		hc := newHTTPClient(t, false)
		call := func(t *testing.T, path, auth string, msg proto.Message, reference, gz bool) rawResponse {
			t.Helper()
			body, err := proto.Marshal(msg)
			mustOK(t, err, "marshal")
			req, err := http.NewRequest(http.MethodPost, ts.URL+path, bytes.NewReader(body))
			mustOK(t, err, "new request")
			req.Header.Set("Content-Type", "application/proto")
			req.Header.Set("Connect-Protocol-Version", "1")
			req.Header.Set("Authorization", auth)
			req.Header.Set("Accept-Encoding", "identity")
			if gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			if reference {
				req.Header.Set("Connect-Timeout-Ms", "+60000")
			}
			res, err := hc.Do(req)
			mustOK(t, err, "POST "+path)
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			mustOK(t, err, "read")
			return rawResponse{Status: res.StatusCode, Header: res.Header, Body: b}
		}
		// same fails unless the fast path's answer and connect-go's are
		// the same; it returns the decoded body of a success.
		same := func(t *testing.T, path, auth string, req, resp proto.Message, gz bool) {
			t.Helper()
			before := connectapi.FastReadsServed()
			fast := call(t, path, auth, req, false, gz)
			served := connectapi.FastReadsServed() > before
			ref := call(t, path, auth, req, true, gz)
			if fast.Status != ref.Status {
				t.Fatalf("fast path: HTTP %d %q, connect-go: HTTP %d %q", fast.Status, fast.Body, ref.Status, ref.Body)
			}
			for _, h := range []string{"Content-Type", "Content-Encoding", "Accept-Encoding", "Connect-Content-Encoding", "Vary"} {
				if fast.Header.Get(h) != ref.Header.Get(h) {
					t.Errorf("%s: fast path %q, connect-go %q", h, fast.Header.Get(h), ref.Header.Get(h))
				}
			}
			if fast.Status != http.StatusOK {
				if !bytes.Equal(fast.Body, ref.Body) {
					t.Errorf("error body: fast path %s, connect-go %s", fast.Body, ref.Body)
				}
				return
			}
			if !served && resp != nil {
				// The view holds what the first read put there: the
				// second read of the same thing must take the fast path.
				before = connectapi.FastReadsServed()
				fast = call(t, path, auth, req, false, gz)
				if connectapi.FastReadsServed() == before {
					t.Fatalf("%s was not answered by the fast path", path)
				}
			}
			decode := func(r rawResponse) []byte {
				if r.Header.Get("Content-Encoding") != "gzip" {
					return r.Body
				}
				zr, err := gzip.NewReader(bytes.NewReader(r.Body))
				mustOK(t, err, "gunzip")
				b, err := io.ReadAll(zr)
				mustOK(t, err, "gunzip")
				return b
			}
			fb, rb := decode(fast), decode(ref)
			if !bytes.Equal(fb, rb) {
				t.Fatalf("bodies differ: fast path %x, connect-go %x", fb, rb)
			}
			mustOK(t, proto.Unmarshal(fb, resp), "decode")
		}
		adminAuth := bearer(testutil.AdminToken)
		get := func(id string) *gitpodv1.GetRunnerRequest { return &gitpodv1.GetRunnerRequest{RunnerId: id} }
		list := func(size int32, token string) *gitpodv1.ListRunnersRequest {
			return &gitpodv1.ListRunnersRequest{Pagination: &gitpodv1.PaginationRequest{PageSize: size, Token: token}}
		}

		t.Run("GetRunner", func(t *testing.T) {
			var got gitpodv1.GetRunnerResponse
			same(t, pathGetRunner, adminAuth, get(ids[0]), &got, true)
			same(t, pathGetRunner, adminAuth, get(ids[0]), &got, false)
			if got.GetRunner().GetRunnerId() != ids[0] {
				t.Fatalf("got runner %q", got.GetRunner().GetRunnerId())
			}
		})
		t.Run("ListRunners", func(t *testing.T) {
			var first, second, all gitpodv1.ListRunnersResponse
			same(t, pathListRunners, adminAuth, list(5, ""), &first, true)
			if len(first.GetRunners()) != 5 || first.GetPagination().GetNextToken() == "" {
				t.Fatalf("first page: %d runners, next %q", len(first.GetRunners()), first.GetPagination().GetNextToken())
			}
			same(t, pathListRunners, adminAuth, list(5, first.GetPagination().GetNextToken()), &second, true)
			if second.GetRunners()[0].GetRunnerId() != ids[5] {
				t.Fatalf("second page starts with %q, want %q", second.GetRunners()[0].GetRunnerId(), ids[5])
			}
			// Each form first, then the other (the page keeps both).
			for _, gz := range []bool{false, true} {
				var seven gitpodv1.ListRunnersResponse
				same(t, pathListRunners, adminAuth, list(7, ""), &seven, gz)
				if len(seven.GetRunners()) != 7 {
					t.Fatalf("page of 7: %d runners", len(seven.GetRunners()))
				}
			}
			for _, gz := range []bool{true, false} {
				same(t, pathListRunners, adminAuth, list(100, ""), &all, gz)
				if len(all.GetRunners()) != len(ids) || all.GetPagination().GetNextToken() != "" {
					t.Fatalf("one page of all: %d runners, next %q", len(all.GetRunners()), all.GetPagination().GetNextToken())
				}
			}
		})
		t.Run("AfterChange", func(t *testing.T) {
			renamed := name("renamed")
			_, err := admin.Runners.UpdateRunner(ctx, connect.NewRequest(&gitpodv1.UpdateRunnerRequest{RunnerId: ids[1], Name: &renamed}))
			mustOK(t, err, "rename")
			var got gitpodv1.GetRunnerResponse
			same(t, pathGetRunner, adminAuth, get(ids[1]), &got, true)
			if got.GetRunner().GetName() != renamed {
				t.Fatalf("GetRunner after a rename: %q", got.GetRunner().GetName())
			}
			var all gitpodv1.ListRunnersResponse
			same(t, pathListRunners, adminAuth, list(100, ""), &all, true)
			if all.GetRunners()[1].GetName() != renamed {
				t.Fatalf("ListRunners after a rename: %q", all.GetRunners()[1].GetName())
			}
		})
		t.Run("Refusals", func(t *testing.T) {
			same(t, pathGetRunner, adminAuth, get("00000000-0000-4000-8000-000000000000"), nil, true)
			same(t, pathGetRunner, adminAuth, get("not-a-uuid"), nil, true)
			same(t, pathListRunners, adminAuth, list(-1, ""), nil, true)
			_, noScope := mustCreateKey(t, admin, name("no-read"), "environments:read")
			same(t, pathGetRunner, bearer(noScope), get(ids[0]), nil, true)
			same(t, pathListRunners, bearer(noScope), list(5, ""), nil, true)
			tok, reader := mustCreateKey(t, admin, name("reader"), "runners:read")
			var got gitpodv1.GetRunnerResponse
			same(t, pathGetRunner, bearer(reader), get(ids[0]), &got, true)
			_, err := admin.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: tok.GetTokenId()}))
			mustOK(t, err, "revoke")
			r := call(t, pathGetRunner, bearer(reader), get(ids[0]), false, true)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("GetRunner with a revoked key: HTTP %d %s", r.Status, r.Body)
			}
			same(t, pathGetRunner, bearer(reader), get(ids[0]), nil, true)
		})
	})
}
