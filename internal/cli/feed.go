package cli

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
)

// This file is the CLI's side of the change feed (gitpod.v1
// EventService/WatchEvents): `--watch` and `runyard status` learn from it
// when to read again. The feed only says "something of these kinds
// changed"; the readers read the resources themselves and compare, so a
// lost or doubled event costs a read, never a wrong screen.

// feedPollInterval is how often a reader with no events for what it shows
// (pods, tokens, users...) reads again.
const feedPollInterval = 2 * time.Second

// feedResync is how often a reader fed by events reads again anyway: a
// safety net, as the server's hub polls its own table.
const feedResync = 30 * time.Second

// maxEnvStreams bounds the environment-scoped streams one feed opens (one
// per environment, since the organization scope carries no service, task
// or execution events); past it the feed polls instead.
const maxEnvStreams = 64

// feedKinds says what a feed watches.
type feedKinds struct {
	// org are kinds of the organization scope (runners, environments,
	// secrets).
	org []gitpodv1.ResourceType
	// env are kinds of the environment scope (services, tasks, task
	// executions), watched in every environment of the organization.
	env []gitpodv1.ResourceType
	// poll is set for a reader of things without events: it reads every
	// feedPollInterval.
	poll bool
	// resourceID, when set, narrows the events to those of one resource
	// (a get).
	resourceID string
}

// feed signals C (buffered, so signals coalesce) after a change of the
// kinds it watches.
type feed struct {
	C chan struct{}
	// Polling says the feed fell back to polling: the server refused the
	// watch (a key without a read scope of the organization's kinds, an
	// older server) or there are too many environments.
	Polling bool

	kinds  feedKinds
	token  string
	events gitpodv1connect.EventServiceClient
	envs   gitpodv1connect.EnvironmentServiceClient

	mu sync.Mutex
	// envStreams are the environment streams running, by environment ID.
	envStreams map[string]context.CancelFunc
}

// openFeed starts the feed and returns once every stream it opened is
// established, so that a read made after it returns misses no change: a
// change after the read is signalled.
func (g *globals) openFeed(ctx context.Context, kinds feedKinds) (*feed, error) {
	token, err := g.endpoint()
	if err != nil {
		return nil, err
	}
	// Streams last as long as the watch: no client timeout.
	hc := &http.Client{Transport: g.transport()}
	base := strings.TrimRight(g.server, "/")
	f := &feed{
		C:          make(chan struct{}, 1),
		kinds:      kinds,
		token:      token,
		events:     gitpodv1connect.NewEventServiceClient(hc, base, connect.WithInterceptors(bearer(token))),
		envs:       gitpodv1connect.NewEnvironmentServiceClient(g.httpClient(60*time.Second), base, connect.WithInterceptors(bearer(token), fieldErrors())),
		envStreams: map[string]context.CancelFunc{},
	}
	if kinds.poll || (len(kinds.org) == 0 && len(kinds.env) == 0) {
		f.startPolling(ctx, feedPollInterval)
		return f, nil
	}
	// The organization stream also tells environment-scoped feeds which
	// environments come and go.
	orgTypes := append([]gitpodv1.ResourceType{}, kinds.org...)
	if len(kinds.env) > 0 {
		orgTypes = append(orgTypes, gitpodv1.ResourceType_RESOURCE_TYPE_ENVIRONMENT)
	}
	if err := f.stream(ctx, &gitpodv1.WatchEventsRequest{Scope: &gitpodv1.WatchEventsRequest_Organization{Organization: true}},
		func(e *gitpodv1.WatchEventsResponse) { f.orgEvent(ctx, e, orgTypes) }); err != nil {
		if fatalWatchError(err) {
			return nil, err
		}
		f.startPolling(ctx, feedPollInterval)
		return f, nil
	}
	if len(kinds.env) > 0 {
		ids, err := f.environmentIDs(ctx)
		if err != nil && fatalWatchError(err) {
			return nil, err
		}
		// A key that may not list environments, or too many of them: the
		// reader polls.
		if err != nil || len(ids) > maxEnvStreams {
			f.startPolling(ctx, feedPollInterval)
			return f, nil
		}
		for _, id := range ids {
			f.addEnv(ctx, id)
		}
	}
	go func() {
		t := time.NewTicker(feedResync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f.signal()
			}
		}
	}()
	return f, nil
}

// fatalWatchError is a refusal no fallback mends: the key itself is wrong.
func fatalWatchError(err error) bool {
	return connect.CodeOf(err) == connect.CodeUnauthenticated
}

func (f *feed) signal() {
	select {
	case f.C <- struct{}{}:
	default:
	}
}

func (f *feed) startPolling(ctx context.Context, every time.Duration) {
	f.Polling = true
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f.signal()
			}
		}
	}()
}

func (f *feed) wants(types []gitpodv1.ResourceType, e *gitpodv1.WatchEventsResponse) bool {
	if f.kinds.resourceID != "" && e.GetResourceId() != f.kinds.resourceID {
		return false
	}
	for _, t := range types {
		if t == e.GetResourceType() {
			return true
		}
	}
	return false
}

// orgEvent handles an event of the organization stream.
func (f *feed) orgEvent(ctx context.Context, e *gitpodv1.WatchEventsResponse, types []gitpodv1.ResourceType) {
	if len(f.kinds.env) > 0 && e.GetResourceType() == gitpodv1.ResourceType_RESOURCE_TYPE_ENVIRONMENT {
		switch e.GetOperation() {
		case gitpodv1.ResourceOperation_RESOURCE_OPERATION_CREATE:
			go f.addEnv(ctx, e.GetResourceId())
		case gitpodv1.ResourceOperation_RESOURCE_OPERATION_DELETE:
			f.removeEnv(e.GetResourceId())
		}
	}
	if f.wants(f.kinds.org, e) {
		f.signal()
	}
}

// addEnv opens the stream of one environment; once it is established the
// reader reads again, since changes made before it are in no stream.
func (f *feed) addEnv(ctx context.Context, id string) {
	f.mu.Lock()
	if _, ok := f.envStreams[id]; ok || len(f.envStreams) >= maxEnvStreams {
		f.mu.Unlock()
		return
	}
	ectx, cancel := context.WithCancel(ctx)
	f.envStreams[id] = cancel
	f.mu.Unlock()
	err := f.stream(ectx, &gitpodv1.WatchEventsRequest{Scope: &gitpodv1.WatchEventsRequest_EnvironmentId{EnvironmentId: id}},
		func(e *gitpodv1.WatchEventsResponse) {
			if f.wants(f.kinds.env, e) {
				f.signal()
			}
		})
	if err != nil {
		// Gone meanwhile, or not readable: nothing to watch there.
		f.removeEnv(id)
	}
	f.signal()
}

func (f *feed) removeEnv(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cancel, ok := f.envStreams[id]; ok {
		cancel()
		delete(f.envStreams, id)
	}
}

func (f *feed) environmentIDs(ctx context.Context) ([]string, error) {
	var ids []string
	token := ""
	for range 1000 {
		res, err := f.envs.ListEnvironments(ctx, connect.NewRequest(&gitpodv1.ListEnvironmentsRequest{
			Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 100},
		}))
		if err != nil {
			return nil, err
		}
		for _, e := range res.Msg.GetEnvironments() {
			ids = append(ids, e.GetId())
		}
		if token = res.Msg.GetPagination().GetNextToken(); token == "" {
			break
		}
	}
	return ids, nil
}

// stream opens one WatchEvents stream and returns once the server says it
// is established (or refused it). It then calls fn with each event in a
// goroutine of its own, and comes back after a broken connection from the
// cursor of the last event it saw, signalling a read, until ctx ends or
// the server refuses the watch.
func (f *feed) stream(ctx context.Context, req *gitpodv1.WatchEventsRequest, fn func(*gitpodv1.WatchEventsResponse)) error {
	open := func(cursor string) (*connect.ServerStreamForClient[gitpodv1.WatchEventsResponse], error) {
		r := &gitpodv1.WatchEventsRequest{Scope: req.Scope, Cursor: cursor}
		cr := connect.NewRequest(r)
		// bearer is a unary interceptor: a stream sets its header itself.
		if f.token != "" {
			cr.Header().Set("Authorization", "Bearer "+f.token)
		}
		s, err := f.events.WatchEvents(ctx, cr)
		if err != nil {
			return nil, err
		}
		// Headers come when the server's watch is established; an
		// answer without the mark is a refusal, which Receive reports.
		if s.ResponseHeader().Get("Runyard-Watch-Started") == "" {
			s.Receive()
			err := s.Err()
			s.Close()
			if err == nil {
				err = errors.New("the server ended the watch before it started")
			}
			return nil, err
		}
		return s, nil
	}
	s, err := open("")
	if err != nil {
		return err
	}
	go func() {
		cursor := ""
		backoff := 250 * time.Millisecond
		for {
			for s.Receive() {
				e := s.Msg()
				if e.GetCursor() != "" {
					cursor = e.GetCursor()
				}
				if e.GetResourceType() == gitpodv1.ResourceType_RESOURCE_TYPE_UNSPECIFIED {
					continue
				}
				fn(e)
			}
			err := s.Err()
			s.Close()
			for {
				if ctx.Err() != nil {
					return
				}
				switch connect.CodeOf(err) {
				case connect.CodeNotFound, connect.CodePermissionDenied, connect.CodeUnauthenticated, connect.CodeUnimplemented:
					return
				case connect.CodeFailedPrecondition:
					// The cursor is older than the events kept: from now,
					// and the read below catches up.
					cursor = ""
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				if backoff < 5*time.Second {
					backoff *= 2
				}
				if s, err = open(cursor); err == nil {
					backoff = 250 * time.Millisecond
					f.signal()
					break
				}
			}
		}
	}()
	return nil
}
