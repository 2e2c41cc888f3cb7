package frontend

// WaitingFor is how many requests wait for job id, for tests that must
// know the waits they started have arrived.
func (s *Server) WaitingFor(id string) int {
	_, n := s.waits.waiting(id)
	return n
}

// WaitsAdmitted is how many requests were let in to wait for jobs.
func (s *Server) WaitsAdmitted() int {
	n, _ := s.waits.waiting("")
	return n
}
