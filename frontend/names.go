package frontend

import (
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"faas/proxies/faas"
)

// maxNameLen bounds user and function names.
const maxNameLen = 64

// validName reports whether s is a user or function name: 1-64 letters,
// digits, '_', '.' or '-', not dots alone. Names go into URLs, logs and
// database keys, so nothing that needs escaping in any of them is
// allowed, and nothing a path would read as "here" or "up" (".", "..").
func validName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen || strings.Trim(s, ".") == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// checkNames answers 400 for a malformed :u or :f before anything else
// happens, so bad names never reach the store.
func (s *Server) checkNames(c *gin.Context) {
	for _, p := range [...]struct{ param, what string }{{"u", "user"}, {"f", "function"}} {
		if v, ok := c.Params.Get(p.param); ok && !validName(v) {
			s.fail(c, faas.Errorf(faas.Invalid, "invalid %s name %.80q: want 1-%d letters, digits, '_', '.' or '-', not dots alone", p.what, v, maxNameLen))
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
