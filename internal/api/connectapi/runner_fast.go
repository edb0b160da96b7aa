package connectapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/api/apiauth"
	"github.com/runyard/runyard/internal/runners"
)

// The runner reads' fast path (issue 17). GetRunner and an unfiltered page
// of ListRunners are the API's most frequent calls. A Connect call to a
// handler that does nothing cost 1.8× a bare HTTP request (client and
// server), and runyard's GetRunner 2.5×: connect-go's handler, then copying
// the runner out of the view, converting and encoding it. For
// the common case — a unary Connect call in binary protobuf, uncompressed,
// whose runner or page the runner view holds — fastReads answers with the
// bytes encoded for that runner (or page) when it was first read after its
// last change, kept in the view's Memos, which go with the runner on every
// change that reaches the view, on every replica. Anything else — another
// protocol or codec, a compressed request, a timeout, a miss, any error —
// goes to connect-go unchanged (its body restored), which answers it as it
// always did, so every error and edge case keeps connect-go's wording.
//
// What it checks is what the interceptors and runners.Service check: the
// guard's authentication outcome (apiauth.Authenticate), the runners:read
// scope, the runner's organization. Reads are not audited (audited).
type fastReads struct {
	svc  *runners.Service
	auth apiauth.Authenticator
	next http.Handler
}

// maxFastBody bounds the requests the fast path reads: a GetRunner or
// ListRunners request is tens of bytes; larger ones go to connect-go.
const maxFastBody = 1 << 10

// compressMinBytes is the handlers' threshold (connect.WithCompressMinBytes
// in Mount): smaller answers are never compressed.
const compressMinBytes = 1024

// Header values the fast path sets, as connect-go sets them for the
// RunnerService's handler (fastGzip is its only compression). Shared,
// never changed.
var (
	protoContentType = []string{"application/proto"}
	acceptGzip       = []string{"gzip"}
	gzipEncoding     = []string{"gzip"}
)

// fastServed, when set (by tests), is called for each answer of the fast
// path.
var fastServed func()

func (f *fastReads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var serve func(context.Context, http.ResponseWriter, *http.Request, []byte) bool
	switch r.URL.Path {
	case gitpodv1connect.RunnerServiceGetRunnerProcedure:
		serve = f.getRunner
	case gitpodv1connect.RunnerServiceListRunnersProcedure:
		serve = f.listRunners
	default:
		f.next.ServeHTTP(w, r)
		return
	}
	orig := r.Body
	ctx, body, ok := f.fastRequest(r)
	if ok && serve(ctx, w, r, body) {
		if fastServed != nil {
			fastServed()
		}
		return
	}
	if body != nil {
		// connect-go reads the body from the start: what was read, then
		// whatever a failed read left.
		r.Body = readCloser{io.MultiReader(bytes.NewReader(body), orig), orig}
	}
	f.next.ServeHTTP(w, r)
}

type readCloser struct {
	io.Reader
	io.Closer
}

// fastRequest reads the body of a request the fast path may answer, and
// returns it with the caller's context; ok is false for any other. body
// is what it read of the request's body, which connect-go must be given
// back when the fast path does not answer.
func (f *fastReads) fastRequest(r *http.Request) (ctx context.Context, body []byte, ok bool) {
	h := r.Header
	if r.Method != http.MethodPost || r.ContentLength < 0 || r.ContentLength > maxFastBody ||
		!oneValue(h, "Content-Type", "application/proto") ||
		!absentOr(h, "Content-Encoding", "identity") ||
		!absentOr(h, "Connect-Protocol-Version", "1") ||
		!timeoutAhead(h) {
		return nil, nil, false
	}
	ctx = r.Context()
	if ctx.Err() != nil || apiauth.Refused(ctx) != nil {
		return nil, nil, false
	}
	body = make([]byte, r.ContentLength)
	if n, err := io.ReadFull(r.Body, body); err != nil {
		return nil, body[:n], false // connect-go reports it, from what is left
	}
	ctx, err := apiauth.Authenticate(ctx, f.auth, h)
	if err != nil {
		return nil, body, false
	}
	return ctx, body, true
}

// timeoutAhead reports whether the request's Connect-Timeout-Ms, if any,
// is a deadline still ahead. The fast path never waits, and connect-go
// checks a deadline only before the method runs: only a call whose
// deadline has passed already (0) fails for it, and only connect-go
// reports a malformed one.
func timeoutAhead(h http.Header) bool {
	v := h["Connect-Timeout-Ms"]
	if len(v) == 0 {
		return true
	}
	if len(v[0]) == 0 || len(v[0]) > 10 {
		return false
	}
	for _, c := range []byte(v[0]) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return strings.TrimLeft(v[0], "0") != ""
}

func oneValue(h http.Header, key, want string) bool {
	v := h[key]
	return len(v) == 1 && v[0] == want
}

func absentOr(h http.Header, key, want string) bool {
	v := h[key]
	return len(v) == 0 || (len(v) == 1 && (v[0] == want || v[0] == ""))
}

// acceptsGzip is connect-go's negotiation of the answer's compression for
// the RunnerService: the first name it knows in Accept-Encoding wins, and
// gzip is the only one.
func acceptsGzip(h http.Header) bool {
	v := h["Accept-Encoding"]
	if len(v) == 0 {
		return false
	}
	for _, name := range strings.FieldsFunc(v[0], func(r rune) bool { return r == ',' || r == ' ' }) {
		if name == "gzip" {
			return true
		}
	}
	return false
}

// runnerEnc is a runner's Memo in the API: the GetRunnerResponse with it,
// encoded. resp[off:] is the Runner message alone.
type runnerEnc struct {
	resp []byte
	off  int
}

// encodedRunner returns r's encoding, from m or made and kept there.
func encodedRunner(r *runners.Runner, m *runners.Memo) (*runnerEnc, error) {
	if e, ok := m.Load().(*runnerEnc); ok {
		return e, nil
	}
	msg, err := proto.Marshal(runnerToProto(r))
	if err != nil {
		return nil, err
	}
	resp := protowire.AppendTag(make([]byte, 0, len(msg)+8), 1, protowire.BytesType) // GetRunnerResponse.runner
	resp = protowire.AppendVarint(resp, uint64(len(msg)))
	e := &runnerEnc{off: len(resp), resp: append(resp, msg...)}
	m.Store(e)
	return e, nil
}

func (f *fastReads) getRunner(ctx context.Context, w http.ResponseWriter, _ *http.Request, body []byte) bool {
	var req gitpodv1.GetRunnerRequest
	if proto.Unmarshal(body, &req) != nil {
		return false
	}
	run, m, ok := f.svc.GetShared(ctx, req.GetRunnerId())
	if !ok {
		return false
	}
	e, err := encodedRunner(run, m)
	if err != nil || len(e.resp) >= compressMinBytes {
		return false
	}
	writeProto(w, e.resp, false)
	return true
}

// pageEnc is a page's Memo in the API: the ListRunnersResponse, encoded,
// from the runners whose Memos were from, with next as its next page token.
// It keeps the answer in the form clients asked for — gzipped (connect-go
// clients accept gzip by default) or not (a page under compressMinBytes,
// or a client without gzip) — the other only once one asks for it too: a
// view holds up to 4,096 pages, and a page of 100 runners is about 30 KB
// (its gzip a fifth of that). A page's Memo lives as long as its members,
// longer than its runners' contents: it is used only while from matches
// the Memos of the runners the view holds now.
type pageEnc struct {
	from []*runners.Memo
	next string
	raw  []byte
	gz   []byte
}

func (p *pageEnc) madeFrom(ms []*runners.Memo, next string) bool {
	if p.next != next || len(p.from) != len(ms) {
		return false
	}
	for i, m := range ms {
		if p.from[i] != m {
			return false
		}
	}
	return true
}

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return w
}}

func (f *fastReads) listRunners(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte) bool {
	var req gitpodv1.ListRunnersRequest
	if proto.Unmarshal(body, &req) != nil {
		return false
	}
	if fl := req.GetFilter(); len(fl.GetCreatorIds()) > 0 || len(fl.GetKinds()) > 0 || len(fl.GetProviders()) > 0 {
		return false
	}
	page, err := pageOf(ctx, req.GetPagination().GetToken(), req.GetPagination().GetPageSize())
	if err != nil {
		return false
	}
	rs, ms, pm, next, ok := f.svc.ListShared(ctx, page)
	if !ok {
		return false
	}
	gz := acceptsGzip(r.Header)
	p, _ := pm.Load().(*pageEnc)
	if p == nil || !p.madeFrom(ms, next) {
		p = &pageEnc{from: ms, next: next}
	}
	switch {
	case gz && p.gz != nil:
		writeProto(w, p.gz, true)
	case p.raw != nil && (!gz || len(p.raw) < compressMinBytes):
		writeProto(w, p.raw, false)
	default:
		// Made now, or asked for in the other form: a new pageEnc, since
		// readers share the stored one.
		raw := p.raw
		if raw == nil {
			if raw, err = encodePage(rs, ms, next); err != nil {
				return false
			}
		}
		q := *p
		if gz && len(raw) >= compressMinBytes {
			if q.gz, err = gzipped(raw); err != nil {
				return false
			}
			writeProto(w, q.gz, true)
		} else {
			q.raw = raw
			writeProto(w, raw, false)
		}
		pm.Store(&q)
	}
	return true
}

// encodePage encodes a ListRunnersResponse of rs as proto.Marshal does
// (fields in order: pagination, then the runners).
func encodePage(rs []*runners.Runner, ms []*runners.Memo, next string) ([]byte, error) {
	raw, err := proto.Marshal(&gitpodv1.ListRunnersResponse{Pagination: &gitpodv1.PaginationResponse{NextToken: next}})
	if err != nil {
		return nil, err
	}
	for i, r := range rs {
		e, err := encodedRunner(r, ms[i])
		if err != nil {
			return nil, err
		}
		msg := e.resp[e.off:]
		raw = protowire.AppendTag(raw, 2, protowire.BytesType) // ListRunnersResponse.runners
		raw = protowire.AppendVarint(raw, uint64(len(msg)))
		raw = append(raw, msg...)
	}
	return raw, nil
}

// gzipped compresses raw at the RunnerService's level (fastGzip).
func gzipped(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeProto answers a unary Connect call with body, as connect-go does.
func writeProto(w http.ResponseWriter, body []byte, gzipped bool) {
	h := w.Header()
	h["Content-Type"] = protoContentType
	h["Accept-Encoding"] = acceptGzip
	if gzipped {
		h["Content-Encoding"] = gzipEncoding
	}
	_, _ = w.Write(body)
}
