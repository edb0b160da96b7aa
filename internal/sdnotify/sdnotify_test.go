package sdnotify_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/sdnotify"
	"github.com/runyard/runyard/internal/sdnotify/sdnotifytest"
)

func TestNew(t *testing.T) {
	tests := []struct {
		addr    string
		wantNil bool
		wantErr bool
	}{
		{addr: "", wantNil: true},
		{addr: "/run/systemd/notify"},
		{addr: "@/org/freedesktop/systemd1/notify/123"},
		{addr: "@", wantNil: true, wantErr: true},
		{addr: "run/notify", wantNil: true, wantErr: true},
		{addr: "vsock:2:1234", wantNil: true, wantErr: true},
	}
	for _, tt := range tests {
		n, err := sdnotify.New(tt.addr)
		if (err != nil) != tt.wantErr || (n == nil) != tt.wantNil {
			t.Errorf("New(%q) = %v, %v; want nil %v, error %v", tt.addr, n, err, tt.wantNil, tt.wantErr)
		}
		if n != nil && n.Addr() != tt.addr {
			t.Errorf("New(%q).Addr() = %q", tt.addr, n.Addr())
		}
	}
}

// shortDir is a directory whose socket paths fit sun_path (108 bytes), which
// a test's TempDir under a long TMPDIR may not.
func shortDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestSend: a message reaches a path socket and an abstract one, its
// fields one a line (a line break inside a field does not make a new one),
// and the socket's credentials name this process as its sender.
func TestSend(t *testing.T) {
	for _, tt := range []struct{ name, addr string }{
		{"Path", filepath.Join(shortDir(t), "notify")},
		{"Abstract", fmt.Sprintf("@runyard-sdnotify-test-%d", os.Getpid())},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := sdnotifytest.Listen(tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			n, err := sdnotify.New(tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Send("READY=1", "STATUS=lost the control plane:\nretrying"); err != nil {
				t.Fatal(err)
			}
			m, err := l.Read(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"READY=1", "STATUS=lost the control plane: retrying"}; !slices.Equal(m.Fields, want) {
				t.Errorf("fields = %q, want %q", m.Fields, want)
			}
			if m.PID != os.Getpid() || m.UID != os.Getuid() {
				t.Errorf("sender pid %d uid %d, want %d %d", m.PID, m.UID, os.Getpid(), os.Getuid())
			}
		})
	}
}

// TestBarrier: a barrier returns once the manager has read the messages
// before it (and closed the descriptor it was passed), and fails after its
// timeout when nobody reads.
func TestBarrier(t *testing.T) {
	addr := filepath.Join(shortDir(t), "notify")
	l, err := sdnotifytest.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n, _ := sdnotify.New(addr)

	got := make(chan []sdnotifytest.Message, 1)
	go func() {
		var ms []sdnotifytest.Message
		for len(ms) < 2 {
			m, err := l.Read(10 * time.Second)
			if err != nil {
				break
			}
			ms = append(ms, m)
		}
		got <- ms
	}()
	if err := n.SendSync(10*time.Second, "MAINPID=4711"); err != nil {
		t.Fatalf("SendSync: %v", err)
	}
	ms := <-got
	if len(ms) != 2 || !slices.Equal(ms[0].Fields, []string{"MAINPID=4711"}) || !slices.Equal(ms[1].Fields, []string{"BARRIER=1"}) || ms[1].FDs != 1 {
		t.Fatalf("messages = %v, want MAINPID then a barrier with one descriptor", ms)
	}

	// Nobody reads now: the barrier's descriptor stays open in the queue.
	err = n.Barrier(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("Barrier with nobody reading = %v, want a timeout", err)
	}
}

// TestTake: the variable leaves the environment (children do not inherit
// it) and Env gives it back.
func TestTake(t *testing.T) {
	t.Setenv(sdnotify.EnvSocket, "@runyard-take")
	n, err := sdnotify.Take()
	if err != nil || n == nil {
		t.Fatalf("Take = %v, %v", n, err)
	}
	if _, ok := os.LookupEnv(sdnotify.EnvSocket); ok {
		t.Error("NOTIFY_SOCKET is still in the environment")
	}
	if got := n.Env(); !slices.Equal(got, []string{"NOTIFY_SOCKET=@runyard-take"}) {
		t.Errorf("Env = %q", got)
	}
	var none *sdnotify.Notifier
	if none.Env() != nil || none.Send("READY=1") != nil || none.Barrier(time.Second) != nil {
		t.Error("a nil Notifier does something")
	}
}

// TestSendNobody: a socket nobody listens on is an error the caller sees.
func TestSendNobody(t *testing.T) {
	n, _ := sdnotify.New(filepath.Join(shortDir(t), "gone"))
	if err := n.Send("READY=1"); err == nil {
		t.Fatal("Send to a missing socket succeeded")
	}
}
