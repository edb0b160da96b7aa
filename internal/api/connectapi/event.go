package connectapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/api/apiauth"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/events"
)

type eventHandler struct {
	svc   *events.Service
	audit *audit.Service
	log   *slog.Logger
}

func (h *eventHandler) WatchEvents(ctx context.Context, req *connect.Request[gitpodv1.WatchEventsRequest], stream *connect.ServerStream[gitpodv1.WatchEventsResponse]) error {
	var sendErr error
	started := func() {
		// Headers go out now, not with the first event: a client knows
		// its watch is established, and changes after this reach it.
		stream.ResponseHeader().Set(watchStartedHeader, "true")
		sendErr = stream.Send(nil)
	}
	hold, _ := ctx.Value(heldFlushKey{}).(*heldFlush)
	// One message per stream, refilled for each event: Send marshals it
	// before it returns, and an event put in an interface by value was an
	// allocation (and its clearing) per event and watcher.
	msg := new(eventMessage)
	err := h.svc.Watch(ctx, watchRequest(req.Msg), started, func(e events.Event, more bool) error {
		if sendErr != nil {
			return sendErr
		}
		if hold != nil {
			hold.held.Store(true)
		}
		// The codec writes the event's shared encoding (eventCodec).
		msg.e = e
		if err := stream.Conn().Send(msg); err != nil {
			return err
		}
		if hold != nil && !more {
			return hold.flush()
		}
		return nil
	})
	if hold != nil {
		// The end of the stream (trailers, an error) is flushed as usual.
		hold.held.Store(false)
	}
	return toConnect(ctx, h.log, gitpodv1connect.EventServiceWatchEventsProcedure, err)
}

// watchStartedHeader marks the response of an established watch, apart from
// one refused (whose error may come in the body, after headers).
const watchStartedHeader = "Runyard-Watch-Started"

func watchRequest(m *gitpodv1.WatchEventsRequest) events.WatchRequest {
	return events.WatchRequest{EnvironmentID: m.GetEnvironmentId(), Cursor: m.GetCursor()}
}

func eventToProto(e events.Event) *gitpodv1.WatchEventsResponse {
	return &gitpodv1.WatchEventsResponse{
		ResourceType: gitpodv1.ResourceType(gitpodv1.ResourceType_value[e.ResourceType]),
		Operation:    gitpodv1.ResourceOperation(gitpodv1.ResourceOperation_value[e.Operation]),
		ResourceId:   e.ResourceID,
		Cursor:       strconv.FormatInt(e.ID, 10),
	}
}

// The wire formats of an event, each encoded once per event and shared by
// every stream that sends it in that format (events.Event.Encoded).
const (
	formatProto = iota
	formatJSON
	formatJSONL
)

func encodeJSONL(e events.Event) ([]byte, error) {
	line, err := protojson.Marshal(eventToProto(e))
	return append(line, '\n'), err
}

// eventMessage is an event handed to connect-go's stream as it is (as a
// pointer): the EventService's codecs (eventCodec) write its shared
// encoding, so that a thousand streams do not marshal the same event a
// thousand times.
type eventMessage struct{ e events.Event }

// eventCodec is a codec of the EventService handler: base's, except that an
// eventMessage is written from the event's shared encoding in format.
type eventCodec struct {
	base   connect.Codec
	format int
}

func (c eventCodec) Name() string { return c.base.Name() }

func (c eventCodec) IsBinary() bool { return c.format == formatProto }

func (c eventCodec) Marshal(msg any) ([]byte, error) {
	if m, ok := msg.(*eventMessage); ok {
		b, err := m.e.Encoded(c.format, c.encode)
		// connect-go recycles what Marshal returns as a buffer.
		return bytes.Clone(b), err
	}
	return c.base.Marshal(msg)
}

// MarshalAppend is what connect-go calls: the shared bytes are copied into
// its pooled buffer.
func (c eventCodec) MarshalAppend(dst []byte, msg any) ([]byte, error) {
	if m, ok := msg.(*eventMessage); ok {
		b, err := m.e.Encoded(c.format, c.encode)
		return append(dst, b...), err
	}
	b, err := c.base.Marshal(msg)
	return append(dst, b...), err
}

func (c eventCodec) Unmarshal(data []byte, msg any) error { return c.base.Unmarshal(data, msg) }

func (c eventCodec) encode(e events.Event) ([]byte, error) { return c.base.Marshal(eventToProto(e)) }

// protoBinary is connect-go's binary codec (which it does not export).
type protoBinary struct{}

func (protoBinary) Name() string { return "proto" }

func (protoBinary) Marshal(msg any) ([]byte, error) {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, errNotProto(msg)
	}
	return proto.Marshal(m)
}

func (protoBinary) Unmarshal(data []byte, msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return errNotProto(msg)
	}
	return proto.Unmarshal(data, m)
}

// eventCodecs are the EventService handler's options: its codecs.
func eventCodecs() []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithCodec(eventCodec{base: protoBinary{}, format: formatProto}),
		connect.WithCodec(eventCodec{base: strictJSON{}, format: formatJSON}),
	}
}

// jsonlWatch serves WatchEvents the way the vendor's SDKs call it: a JSON
// request (Content-Type application/json or application/jsonl) asking for
// Accept: application/jsonl gets one JSON WatchEventsResponse per line,
// each flushed as it comes. Errors before the stream starts are Connect's
// JSON errors with their HTTP status; other requests go to next.
func jsonlWatch(next http.Handler, auth apiauth.Authenticator, svc *events.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// ListAuditLogs, the service's other method, is plain Connect.
		if r.Method != http.MethodPost || !wantsJSONL(r.Header) || !strings.HasSuffix(r.URL.Path, "/WatchEvents") {
			hf := &heldFlush{ResponseWriter: w}
			next.ServeHTTP(hf, r.WithContext(context.WithValue(r.Context(), heldFlushKey{}, hf)))
			return
		}
		ctx := r.Context()
		fail := func(err error) {
			e := apperr.As(err)
			if e.Code == apperr.CodeInternal {
				log.ErrorContext(ctx, "request failed", "procedure", gitpodv1connect.EventServiceWatchEventsProcedure, "err", err)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(apperr.HTTPStatus(e.Code))
			fmt.Fprintf(w, `{"code":%q,"message":%q}`+"\n", e.Code, e.Public())
		}
		if err := apiauth.Refused(ctx); err != nil {
			fail(err)
			return
		}
		ctx, err := apiauth.Authenticate(ctx, auth, r.Header)
		if err != nil {
			fail(err)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
		if err != nil {
			fail(apperr.Invalid("body", "read the request: %v", err))
			return
		}
		if len(body) > MaxRequestBytes {
			fail(&apperr.Error{Code: apperr.CodeResourceExhausted, Message: "request body larger than 4 MiB"})
			return
		}
		var msg gitpodv1.WatchEventsRequest
		if err := (strictJSON{}).Unmarshal(body, &msg); err != nil {
			fail(apperr.Invalid("body", "%v", err))
			return
		}
		flusher, _ := w.(http.Flusher)
		rc := http.NewResponseController(w)
		started := func() {
			w.Header().Set("Content-Type", "application/jsonl")
			w.Header().Set(watchStartedHeader, "true")
			w.WriteHeader(http.StatusOK)
			if flusher != nil {
				flusher.Flush()
			}
		}
		began := false
		err = svc.Watch(ctx, watchRequest(&msg), func() { began = true; started() }, func(e events.Event, more bool) error {
			line, err := e.Encoded(formatJSONL, encodeJSONL)
			if err != nil {
				return fmt.Errorf("encode an event: %w", err)
			}
			if _, err := w.Write(line); err != nil {
				return err
			}
			if more {
				return nil
			}
			return rc.Flush()
		})
		if !began && err != nil {
			fail(err)
			return
		}
		if err != nil && ctx.Err() == nil {
			log.DebugContext(ctx, "event stream ended", "err", err)
		}
	})
}

// heldFlush lets WatchEvents write a burst of events with one flush:
// connect-go flushes after every message, a write system call per event and
// watcher, which was most of a stream's CPU under a busy feed. While held
// is set, Flush only marks the writer; the handler flushes once the hub has
// no more events for it at once (events.Hub.Watch's more).
type heldFlush struct {
	http.ResponseWriter
	held atomic.Bool
}

type heldFlushKey struct{}

func (h *heldFlush) Flush() {
	if h.held.Load() {
		return
	}
	if f, ok := h.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// flush flushes what was held.
func (h *heldFlush) flush() error {
	h.held.Store(false)
	return http.NewResponseController(h.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the writer underneath.
func (h *heldFlush) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// wantsJSONL reports a request in the vendor SDKs' streaming form.
func wantsJSONL(h http.Header) bool {
	// A plain JSON body cannot be a Connect stream (application/connect+json).
	ct, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if ct == "application/jsonl" || ct == "application/json" {
		return true
	}
	if ct != "" {
		return false
	}
	for _, a := range strings.Split(h.Get("Accept"), ",") {
		if t, _, _ := mime.ParseMediaType(strings.TrimSpace(a)); t == "application/jsonl" {
			return true
		}
	}
	return false
}
