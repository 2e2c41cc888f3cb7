package frontend

// WaitingFor is how many requests wait for job id, for tests that must
// know the waits they started have arrived.
func (s *Server) WaitingFor(id string) int { return s.watch.Waiting(id) }

// WaitsAdmitted is how many requests were let in to wait for jobs.
func (s *Server) WaitsAdmitted() int { return s.caps.admitted() }
