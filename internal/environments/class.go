package environments

import (
	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/runners"
)

// This file holds environment classes. Every runner has exactly one, its
// default class, and it is derived from the runner instead of stored: its ID
// is the runner's ID with a fixed mask XORed in, so the class exists as soon
// as the runner does, goes away with it, needs no write when a runner is
// created (runner creation is not this package's), and CreateEnvironment finds
// the runner of a class without a lookup table. A stored class table would
// pay for itself only once runners offer several classes.

// Class is an environment class: a kind of environment a runner offers.
type Class struct {
	ID          string
	RunnerID    string
	DisplayName string
	Description string
	// Enabled is false once the runner is being deleted: no new environment
	// may be created on it.
	Enabled bool
	// CanCreate is Enabled on a runner that is connected and takes work
	// (ACTIVE or DEGRADED, not draining).
	CanCreate bool
	// RunnerSeq orders classes as their runners.
	RunnerSeq int64
}

// classMask leaves the version nibble (byte 6, high half) and the variant
// bits (byte 8, top two) at zero, so a class ID is a well-formed UUID of the
// same version and variant as its runner's ID, and never equal to it.
var classMask = uuid.UUID{
	0xc1, 0xa5, 0x5e, 0x5d, 0xef, 0xa0, 0x0c, 0x1a,
	0x35, 0x5e, 0x5d, 0xef, 0xa0, 0x17, 0xc1, 0xa5,
}

func xorMask(id uuid.UUID) uuid.UUID {
	for i := range id {
		id[i] ^= classMask[i]
	}
	return id
}

// DefaultClassID returns the ID of a runner's default class.
func DefaultClassID(runnerID string) string {
	id, err := uuid.Parse(runnerID)
	if err != nil {
		// Runner IDs are UUIDs by construction; an unparsable one has no
		// class.
		return ""
	}
	return xorMask(id).String()
}

// RunnerOfClass returns the ID of the runner whose default class is classID;
// classID must be a UUID.
func RunnerOfClass(classID string) string {
	id, err := uuid.Parse(classID)
	if err != nil {
		return ""
	}
	return xorMask(id).String()
}

// DefaultClass returns a runner's default class.
func DefaultClass(r *runners.Runner) *Class {
	enabled := r.Spec.DesiredPhase != runners.PhaseDeleted &&
		r.Status.Phase != runners.PhaseDeleting && r.Status.Phase != runners.PhaseDeleted
	active := r.Status.Phase == runners.PhaseActive || r.Status.Phase == runners.PhaseDegraded
	return &Class{
		ID:          DefaultClassID(r.ID),
		RunnerID:    r.ID,
		DisplayName: "Default",
		Description: "Environments in a workspace directory on the host of runner " + r.Name,
		Enabled:     enabled,
		CanCreate:   enabled && active && !r.Draining(),
		RunnerSeq:   r.Seq,
	}
}
