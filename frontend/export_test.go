package frontend

import "time"

// WaitingFor is how many requests wait for job id, for tests that must
// know the waits they started have arrived.
func (s *Server) WaitingFor(id string) int { return s.watch.Waiting(id) }

// ShortTokenBounds has a frontend forget a token's user after ttl unless
// it keeps up with the queue's events, and after maxAge in any case.
func ShortTokenBounds(cfg *Config, ttl, maxAge time.Duration) {
	cfg.tokenTTL, cfg.tokenMaxAge = ttl, maxAge
}

// WaitsAdmitted is how many requests were let in to wait for jobs.
func (s *Server) WaitsAdmitted() int { return s.caps.admitted() }
