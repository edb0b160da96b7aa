package runner

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/runyard/runyard/internal/runner/statefile"
)

// TestEpochs: the epochs of a state dir's streams are remembered across
// daemon processes on that directory and boot only: a copy of the
// directory, a record from another boot and a new access token start from
// none, so that a pod handed to another daemon is never taken for one's
// own.
func TestEpochs(t *testing.T) {
	dir := t.TempDir()
	s := &state{dir: dir}
	if got := s.loadEpochs(); len(got) != 0 {
		t.Fatalf("epochs of a new state dir: %v", got)
	}
	if err := s.saveEpochs(map[int64]bool{3: true, 4: true}); err != nil {
		t.Fatal(err)
	}
	if got := (&state{dir: dir}).loadEpochs(); len(got) != 2 || !got[3] || !got[4] {
		t.Fatalf("epochs read back: %v, want 3 and 4", got)
	}

	t.Run("CopyOfTheDirectory", func(t *testing.T) {
		cp := t.TempDir()
		b, err := os.ReadFile(filepath.Join(dir, epochsFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cp, epochsFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if got := (&state{dir: cp}).loadEpochs(); len(got) != 0 {
			t.Errorf("a copy of the state dir took the epochs %v for its own", got)
		}
	})
	t.Run("AnotherBoot", func(t *testing.T) {
		other := t.TempDir()
		so := &state{dir: other}
		if err := so.saveEpochs(map[int64]bool{7: true}); err != nil {
			t.Fatal(err)
		}
		var rec epochsRecord
		if err := statefile.Read(filepath.Join(other, epochsFile), &rec); err != nil {
			t.Fatal(err)
		}
		rec.BootID = "another-boot"
		if err := statefile.Write(filepath.Join(other, epochsFile), rec); err != nil {
			t.Fatal(err)
		}
		if got := so.loadEpochs(); len(got) != 0 {
			t.Errorf("epochs of another boot: %v, want none", got)
		}
	})
	t.Run("Bounded", func(t *testing.T) {
		other := &state{dir: t.TempDir()}
		many := map[int64]bool{}
		for e := int64(1); e <= maxEpochs+10; e++ {
			many[e] = true
		}
		if err := other.saveEpochs(many); err != nil {
			t.Fatal(err)
		}
		got := other.loadEpochs()
		if len(got) != maxEpochs || got[10] || !got[maxEpochs+10] {
			t.Errorf("kept %d epochs (10: %v, newest: %v), want the newest %d", len(got), got[10], got[maxEpochs+10], maxEpochs)
		}
	})
	t.Run("NewAccessToken", func(t *testing.T) {
		s.Credentials = Credentials{Server: "http://127.0.0.1:1", AccessToken: "a"}
		if err := s.saveCredentials(Credentials{Server: "http://127.0.0.1:1", AccessToken: "b"}); err != nil {
			t.Fatal(err)
		}
		if got := s.loadEpochs(); len(got) != 0 {
			t.Errorf("epochs after a new access token: %v, want none", got)
		}
	})
}
