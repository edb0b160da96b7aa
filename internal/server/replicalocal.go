package server

import (
	"github.com/runyard/runyard/internal/fleet"
	"github.com/runyard/runyard/internal/identity"
)

// replicaLocal is what this replica does with a change, its own or one
// another replica announced: its fleet wakes or ends the streams it holds,
// and the identity service forgets the keys it caches, so that a revoked
// key, or a user's key whose owner was disabled, removed or demoted, stops
// working on every replica at its next use.
type replicaLocal struct {
	*fleet.Fleet
	keys *identity.Service
}

func (l replicaLocal) TokenRevoked(orgID, tokenID string) {
	l.keys.KeyChanged(tokenID)
	l.Fleet.TokenRevoked(orgID, tokenID)
}

// OrgChanged also forgets the organization's cached keys: a deleted
// organization's keys stop working on every replica at once (the others
// are told by the notice its deletion sends).
func (l replicaLocal) OrgChanged(orgID string) {
	l.keys.OrganizationKeysChanged(orgID)
	l.Fleet.OrgChanged(orgID)
}

// Resync also forgets every cached key: the notices missed while this
// replica was not listening may have revoked some.
func (l replicaLocal) Resync() {
	l.keys.ForgetKeys()
	l.Fleet.Resync()
}

// ReplicaNoticesLive reports whether this replica receives every other
// replica's change notices now; with SQLite there are none to miss. While
// it does not, cached keys are trusted for a few seconds only.
func (s *Server) ReplicaNoticesLive() bool { return s.bus == nil || s.bus.Listening() }
