// Package replicaproxy sends a request that needs a runner's stream (a pod's
// terminal or output, a service's or task's log) to the control-plane
// replica that holds the stream, when it reached another one. Replicas
// sharing a PostgreSQL database record which of them holds each runner's
// stream; a replica that finds the stream elsewhere proxies the whole
// request there (WebSocket upgrades included), with the caller's own
// credentials, which that replica checks again.
package replicaproxy

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/rawconn"
)

// ElsewhereError is the error of a request that needs the stream of a
// runner that is not connected to this replica. It is also an
// apperr.CodeUnavailable error, for a caller that cannot relay.
type ElsewhereError struct {
	OrgID, RunnerID string
}

func (e *ElsewhereError) Error() string {
	return "the runner is not connected to this control plane; try again when it is online"
}

// Unwrap makes it an apperr.CodeUnavailable error with the same message.
func (e *ElsewhereError) Unwrap() error {
	return &apperr.Error{Code: apperr.CodeUnavailable, Message: e.Error()}
}

// Header marks a relayed request, so that it is never relayed twice. Its
// value is signed with the replicas' shared relay key (see Relayed): a
// client may set the header, but only a replica can sign it.
const Header = "X-Runyard-Relayed"

// KeyName names the server key (the same on every replica) that signs
// relayed requests.
const KeyName = "replica-relay"

// relayMaxAge bounds how old a signed relay header may be: a relay
// reaches the other replica within moments, and clocks of replicas agree
// within this.
const relayMaxAge = 2 * time.Minute

// Proxy relays requests to the replica holding a runner's stream.
type Proxy struct {
	// Self is this replica's URL as the others reach it.
	Self string
	// Find returns the URL of the replica holding the runner's stream, ""
	// when none does.
	Find func(ctx context.Context, orgID, runnerID string) (string, error)
	Log  *slog.Logger
	// Key signs the relay header; without it relayed requests carry an
	// unsigned header, which Relayed never accepts.
	Key []byte
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

func (p *Proxy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// sign returns the relay header's value for a request: the time and an
// HMAC of it with the method and the request URI.
func (p *Proxy) sign(method, requestURI string, at time.Time) string {
	ts := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, p.Key)
	m.Write([]byte(method + " " + requestURI + " " + ts))
	return ts + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Relayed reports whether r was relayed here by another replica: its relay
// header is signed with the shared key, for this method and URI, recently.
// The audit log leaves such a request to the replica that relayed it,
// which saw the client and records the call once.
func (p *Proxy) Relayed(r *http.Request) bool {
	if p == nil || len(p.Key) == 0 {
		return false
	}
	v := r.Header.Get(Header)
	ts, _, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if d := p.now().Sub(time.Unix(sec, 0)); d > relayMaxAge || d < -relayMaxAge {
		return false
	}
	return hmac.Equal([]byte(v), []byte(p.sign(r.Method, r.URL.RequestURI(), time.Unix(sec, 0))))
}

// Relay proxies r to the replica holding the stream err names and reports
// whether it did; when it did not (err is another error, no replica holds
// the stream, the request was relayed already), the caller answers with err
// itself.
func (p *Proxy) Relay(w http.ResponseWriter, r *http.Request, err error) bool {
	u, target, ok := p.replica(r, err)
	if !ok {
		return false
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(Header, "1")
			if len(p.Key) > 0 {
				pr.Out.Header.Set(Header, p.sign(pr.Out.Method, pr.Out.URL.RequestURI(), p.now()))
			}
		},
		// Followed logs and terminals stream: pass every write on at once.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.Log.Warn("relay to the replica holding a runner's stream", "replica", target, "err", err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(`{"error":"the control plane holding the runner's stream did not answer","code":"unavailable"}` + "\n"))
		},
	}
	rp.ServeHTTP(w, r)
	return true
}

// replica returns the URL of the replica to relay r to, for err (see
// Relay); ok is false when r is not to be relayed.
func (p *Proxy) replica(r *http.Request, err error) (u *url.URL, target string, ok bool) {
	var e *ElsewhereError
	if p == nil || p.Find == nil || !errors.As(err, &e) || r.Header.Get(Header) != "" {
		return nil, "", false
	}
	target, ferr := p.Find(r.Context(), e.OrgID, e.RunnerID)
	if ferr != nil {
		p.Log.Warn("find the replica holding a runner's stream", "runner", e.RunnerID, "err", ferr)
		return nil, "", false
	}
	if target == "" || target == p.Self {
		return nil, "", false
	}
	u, perr := url.Parse(target)
	if perr != nil {
		p.Log.Warn("a replica's URL is unusable", "url", target, "err", perr)
		return nil, "", false
	}
	return u, target, true
}

// RelayUpgraded is Relay for a request that upgrades to protocol
// (rawconn): the replica's answer is passed on, and after a 101 the two
// connections are piped with each direction's half-close kept (a reverse
// proxy ends both directions when one ends).
func (p *Proxy) RelayUpgraded(w http.ResponseWriter, r *http.Request, err error, protocol string) bool {
	u, target, ok := p.replica(r, err)
	if !ok {
		return false
	}
	out := *u
	out.Path = strings.TrimRight(u.Path, "/") + r.URL.Path
	out.RawPath = ""
	out.RawQuery = r.URL.RawQuery
	hdr := r.Header.Clone()
	for _, h := range []string{"Connection", "Upgrade", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding"} {
		hdr.Del(h)
	}
	hdr.Set(Header, "1")
	if len(p.Key) > 0 {
		hdr.Set(Header, p.sign(http.MethodGet, out.RequestURI(), p.now()))
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	back, derr := rawconn.Dial(ctx, out.String(), hdr, protocol, nil)
	cancel()
	if derr != nil {
		var se *rawconn.StatusError
		if errors.As(derr, &se) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(se.StatusCode)
			_, _ = w.Write(se.Body)
			return true
		}
		p.Log.Warn("relay to the replica holding a runner's stream", "replica", target, "err", derr)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(`{"error":"the control plane holding the runner's stream did not answer","code":"unavailable"}` + "\n"))
		return true
	}
	conn, aerr := rawconn.Accept(w, protocol)
	if aerr != nil {
		back.Close()
		return true
	}
	_ = rawconn.Pipe(conn, back)
	return true
}

// Sessions is the record of which replica holds each runner's stream.
type Sessions interface {
	// RecordRunnerSession records that replica holds runnerID's stream
	// since since, replacing a record of an older stream (never a newer
	// one's).
	RecordRunnerSession(ctx context.Context, orgID, runnerID, replica string, since time.Time) error
	// EndRunnerSession forgets runnerID's stream that replica started at
	// since; the record of any other stream stays.
	EndRunnerSession(ctx context.Context, runnerID, replica string, since time.Time) error
	// FindRunnerSession returns the replica holding runnerID's stream, ""
	// when none does.
	FindRunnerSession(ctx context.Context, orgID, runnerID string) (string, error)
}

// Recorder writes where runners' streams are to Sessions from one
// goroutine, keeping only each runner's latest change: a fleet of runners
// connecting at once must not take every database connection for these
// writes (the renewals and reports of those runners need them more).
type Recorder struct {
	sessions Sessions
	self     string
	log      *slog.Logger

	mu      sync.Mutex
	pending map[string]change // by runner ID
	wake    chan struct{}
}

type change struct {
	orgID string
	since time.Time
	ended bool
}

// NewRecorder returns a recorder of the streams this replica, at self,
// holds; call Run.
func NewRecorder(sessions Sessions, self string, log *slog.Logger) *Recorder {
	return &Recorder{sessions: sessions, self: self, log: log, pending: map[string]change{}, wake: make(chan struct{}, 1)}
}

// Connected records that this replica holds runnerID's stream since since.
func (r *Recorder) Connected(orgID, runnerID string, since time.Time) {
	r.queue(runnerID, change{orgID: orgID, since: since})
}

// Disconnected records that the stream that began at since ended.
func (r *Recorder) Disconnected(orgID, runnerID string, since time.Time) {
	r.queue(runnerID, change{orgID: orgID, since: since, ended: true})
}

func (r *Recorder) queue(runnerID string, c change) {
	r.mu.Lock()
	r.pending[runnerID] = c
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run writes queued changes until ctx ends, then what is left (for a few
// seconds at most).
func (r *Recorder) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r.write(fctx)
			cancel()
			return
		case <-r.wake:
			r.write(ctx)
		}
	}
}

func (r *Recorder) write(ctx context.Context) {
	r.mu.Lock()
	batch := r.pending
	r.pending = map[string]change{}
	r.mu.Unlock()
	failed := 0
	var last error
	for runnerID, c := range batch {
		var err error
		if c.ended {
			err = r.sessions.EndRunnerSession(ctx, runnerID, r.self, c.since)
		} else {
			err = r.sessions.RecordRunnerSession(ctx, c.orgID, runnerID, r.self, c.since)
		}
		if err != nil {
			failed, last = failed+1, err
		}
	}
	if failed > 0 && ctx.Err() == nil {
		// Only relaying suffers: other replicas answer "not connected to
		// this control plane" for these runners until they reconnect.
		r.log.Warn("record which replica holds runners' streams", "failed", failed, "of", len(batch), "err", last)
	}
}
