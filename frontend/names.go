package frontend

import (
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"faas/proxies/faas"
)

// checkNames answers 400 for a malformed :u, :f or :topic before anything else
// happens, so bad names never reach the store.
func (s *Server) checkNames(c *gin.Context) {
	for _, p := range [...]struct{ param, what string }{{"u", "user"}, {"f", "function"}, {"topic", "topic"}} {
		if v, ok := c.Params.Get(p.param); ok && !faas.ValidName(v) {
			s.fail(c, faas.Errorf(faas.Invalid, "invalid %s name %.80q: want 1-%d letters, digits, '_', '.' or '-', not dots alone", p.what, v, faas.MaxNameLen))
			return
		}
	}
}

// validJobID reports whether id looks like the job ids this frontend
// creates. Anything else cannot be a job, so it is a 404 without a lookup.
func validJobID(id string) bool {
	if len(id) != 36 {
		return false
	}
	_, err := uuid.Parse(id)
	return err == nil
}
