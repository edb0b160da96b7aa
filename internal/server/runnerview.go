package server

import "github.com/runyard/runyard/internal/store/sqlstore"

// RunnerViewLive reports whether the API reads runners from this replica's
// view in memory now (sqlstore's runner view; on PostgreSQL while it hears
// the other replicas' changes), for tests that must know.
func (s *Server) RunnerViewLive() bool {
	db, ok := s.store.(*sqlstore.DB)
	return ok && db.RunnerViewLive()
}
