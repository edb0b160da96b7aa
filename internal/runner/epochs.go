package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/runyard/runyard/internal/runner/proc"
	"github.com/runyard/runyard/internal/runner/statefile"
)

// epochsFile lists the stream epochs that daemons on this state directory
// were welcomed with, so that a daemon started after another one died
// (crash, SIGKILL, upgrade) may start the pods its predecessor was handed
// and never started: a pod handed to one of these epochs and absent from
// the pods directory never ran. The list is valid only on the boot and for
// the directory (device and inode) it was written on: a copy of the state
// directory, here or on another machine, is another daemon, whose pods
// must never start here.
const epochsFile = "epochs.json"

// maxEpochs bounds the list; a pod handed to an older epoch and never
// started is reported lost, as one handed to another daemon.
const maxEpochs = 64

type epochsRecord struct {
	BootID string  `json:"bootId"`
	Dev    uint64  `json:"dev"`
	Ino    uint64  `json:"ino"`
	Epochs []int64 `json:"epochs"`
}

// dirIdentity is the device and inode of dir.
func dirIdentity(dir string) (dev, ino uint64, err error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return 0, 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, errors.New("no inode number")
	}
	return uint64(st.Dev), st.Ino, nil
}

// loadEpochs returns the epochs of earlier daemons on this state directory
// on this boot; none when the list was written on another boot or for
// another directory, or cannot be read.
func (s *state) loadEpochs() map[int64]bool {
	out := map[int64]bool{}
	var rec epochsRecord
	if err := statefile.Read(filepath.Join(s.dir, epochsFile), &rec); err != nil {
		return out
	}
	dev, ino, err := dirIdentity(s.dir)
	if err != nil || rec.BootID != proc.BootID() || rec.Dev != dev || rec.Ino != ino {
		return out
	}
	for _, e := range rec.Epochs {
		out[e] = true
	}
	return out
}

// saveEpochs records epochs (the last maxEpochs) as this state directory's,
// on this boot.
func (s *state) saveEpochs(epochs map[int64]bool) error {
	dev, ino, err := dirIdentity(s.dir)
	if err != nil {
		return fmt.Errorf("record stream epochs: %w", err)
	}
	list := make([]int64, 0, len(epochs))
	for e := range epochs {
		list = append(list, e)
	}
	slices.Sort(list)
	if len(list) > maxEpochs {
		list = list[len(list)-maxEpochs:]
	}
	return statefile.Write(filepath.Join(s.dir, epochsFile), epochsRecord{BootID: proc.BootID(), Dev: dev, Ino: ino, Epochs: list})
}
