package envaccess

import (
	"context"
	"sync"
	"time"

	"github.com/runyard/runyard/internal/environments"
)

// Activity of sessions, for the inactivity stop (spec.timeout.disconnected,
// internal/environments/activity.go).
//
// An open session keeps its environment active, and its traffic marks it
// active: while an environment has a session open on this replica, its
// activity is written at most once per interval (a quarter of its timeout,
// at most a minute), from traffic or, for a session without traffic, from
// a ticker. So a busy port forward costs one write a minute, not one per
// packet, and an idle shell still counts. InUse tells the inactivity sweep
// of this replica about open sessions directly, so a session opened just
// before a sweep is never stopped under it; sessions on other replicas
// reach the sweep through the written activity.

// maxMarkEvery bounds how long an environment's activity may go unwritten
// while it has a session open.
const maxMarkEvery = time.Minute

// activity tracks the environments with sessions open on this replica.
type activity struct {
	// mark writes activity; nil writes nothing.
	mark func(ctx context.Context, orgID, envID, source string)
	now  func() time.Time

	mu      sync.Mutex
	envs    map[string]*envActivity
	ticking bool
}

type envActivity struct {
	orgID  string
	source string
	open   int
	every  time.Duration
	last   time.Time
	// writing is set while a write is under way: traffic meanwhile writes
	// nothing more.
	writing bool
}

// markEvery is how often an environment with a session open has its
// activity written: often enough that its timeout never passes between
// two writes.
func markEvery(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		return maxMarkEvery
	}
	return min(maxMarkEvery, max(timeout/4, 10*time.Millisecond))
}

// opened records a session opened in e and writes its activity.
func (a *activity) opened(e *environments.Environment, source string) {
	a.mu.Lock()
	if a.envs == nil {
		a.envs = map[string]*envActivity{}
	}
	ea := a.envs[e.ID]
	if ea == nil {
		ea = &envActivity{orgID: e.OrgID}
		a.envs[e.ID] = ea
	}
	ea.open++
	ea.source = source
	ea.every = markEvery(e.Spec.Timeout.Disconnected)
	// A new session is always written: it is what the user just did.
	ea.last = time.Time{}
	start := !a.ticking
	a.ticking = true
	a.mu.Unlock()
	if start {
		go a.tick()
	}
	a.touch(e.ID)
}

// closed records the end of a session opened in envID.
func (a *activity) closed(envID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ea := a.envs[envID]; ea != nil {
		if ea.open--; ea.open <= 0 {
			delete(a.envs, envID)
		}
	}
}

// touch writes envID's activity unless it was written within its interval
// (or is being written); the write runs on its own, off the session's path.
func (a *activity) touch(envID string) {
	a.mu.Lock()
	ea := a.envs[envID]
	now := a.now()
	if ea == nil || ea.writing || now.Sub(ea.last) < ea.every {
		a.mu.Unlock()
		return
	}
	ea.writing = true
	orgID, source := ea.orgID, ea.source
	a.mu.Unlock()
	go func() {
		if a.mark != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			a.mark(ctx, orgID, envID, source)
			cancel()
		}
		a.mu.Lock()
		ea.writing = false
		ea.last = now
		a.mu.Unlock()
	}()
}

// tick writes the activity of environments whose sessions are open but
// quiet, until none is open.
func (a *activity) tick() {
	for {
		a.mu.Lock()
		if len(a.envs) == 0 {
			a.ticking = false
			a.mu.Unlock()
			return
		}
		next := maxMarkEvery
		ids := make([]string, 0, len(a.envs))
		for id, ea := range a.envs {
			ids = append(ids, id)
			next = min(next, ea.every/2)
		}
		a.mu.Unlock()
		for _, id := range ids {
			a.touch(id)
		}
		time.Sleep(next)
	}
}

// inUse returns the source of a session open in envID on this replica, or
// "".
func (a *activity) inUse(envID string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ea := a.envs[envID]; ea != nil {
		return ea.source
	}
	return ""
}

// trackedStream is a Stream whose traffic marks its environment active and
// whose Close ends its part in keeping it active.
type trackedStream struct {
	Stream
	a         *activity
	envID     string
	closeOnce sync.Once
}

func (t *trackedStream) Recv() (Frame, error) {
	f, err := t.Stream.Recv()
	if err == nil {
		t.a.touch(t.envID)
	} else {
		// The session ended: it keeps nothing active any more, also
		// before its user closes it.
		t.release()
	}
	return f, err
}

func (t *trackedStream) Write(p []byte) error {
	t.a.touch(t.envID)
	return t.Stream.Write(p)
}

func (t *trackedStream) Close() {
	t.release()
	t.Stream.Close()
}

// Unwrap returns the stream tracked (for Raw).
func (t *trackedStream) Unwrap() Stream { return t.Stream }

func (t *trackedStream) release() {
	t.closeOnce.Do(func() { t.a.closed(t.envID) })
}
