package frontend

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"faas/proxies/faas"
)

// register creates a user and hands out its token, the only time the token
// is ever seen: the store keeps its hash. A taken name is a conflict, never
// a reset, unlike the reference project.
func (s *Server) register(c *gin.Context) {
	name := c.Param("u")
	if err := s.mayRegister(c); err != nil {
		s.fail(c, err)
		return
	}
	token, hash, err := newToken()
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	s.registering.Lock()
	defer s.registering.Unlock()
	if err := s.checkUserQuota(ctx); err != nil {
		s.fail(c, err)
		return
	}
	err = s.store.CreateUser(ctx, faas.User{Name: name, TokenHash: hash, Created: time.Now().UTC()})
	if faas.ErrorCode(err) == faas.Conflict {
		s.fail(c, faas.Errorf(faas.Conflict, "user %q already exists", name))
		return
	}
	if err != nil {
		s.fail(c, fmt.Errorf("create user %s: %w", name, err))
		return
	}
	s.log.Info("user registered", "user", name)
	ok(c, http.StatusCreated, gin.H{"name": name, "token": token})
}

// deleteUser removes the user with everything they own, and forgets their
// tokens here at once.
func (s *Server) deleteUser(c *gin.Context) {
	name := c.Param("u")
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	// The queue also stops the user's jobs.
	err := s.voidTokens(ctx, name, func() error { return s.store.DeleteUser(ctx, name) }, s.queue.ForgetUser)
	if err != nil {
		s.fail(c, fmt.Errorf("delete user %s: %w", name, err))
		return
	}
	// Their jobs are gone: here at once, elsewhere through UserRevoked.
	s.finished.forgetUser(name)
	s.log.Info("user deleted", "user", name)
	ok(c, http.StatusOK, name)
}

// rotateToken gives the user a new token and voids the one that
// authenticated the request, on every frontend at once: here by
// forgetting the user's cached tokens, elsewhere through the queue's
// UserRevoked event. Like registration, the answer is the only time the
// new token is seen.
func (s *Server) rotateToken(c *gin.Context) {
	name := c.Param("u")
	token, hash, err := newToken()
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	err = s.voidTokens(ctx, name, func() error { return s.store.SetTokenHash(ctx, name, hash) }, s.queue.RevokeTokens)
	if err != nil {
		s.fail(c, fmt.Errorf("rotate token of %s: %w", name, err))
		return
	}
	s.log.Info("token rotated", "user", name)
	ok(c, http.StatusOK, gin.H{"name": name, "token": token})
}

// voidTokens runs change, which voids the user's token in the store,
// forgetting the user's cached tokens before and after it (a request
// racing with this one may cache the token again while the change is
// under way), then tells the queue through tell (ForgetUser or
// RevokeTokens), whose UserRevoked event makes every other frontend
// forget them too. If the queue does not hear, the other frontends
// forget them when their cache entries expire.
func (s *Server) voidTokens(ctx context.Context, name string, change func() error, tell func(context.Context, string) error) error {
	s.tokens.forget(name)
	err := change()
	s.tokens.forget(name)
	if err != nil {
		return err
	}
	if err := tell(ctx, name); err != nil {
		s.log.Warn("the queue did not hear that the user's tokens are void", "user", name, "err", err)
	}
	return nil
}

// billedTime answers the user's total billed execution time in
// milliseconds, with microsecond precision.
func (s *Server) billedTime(c *gin.Context) {
	name := c.Param("u")
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	d, err := s.store.BilledTime(ctx, name)
	if err != nil {
		s.fail(c, fmt.Errorf("billed time of %s: %w", name, err))
		return
	}
	ok(c, http.StatusOK, millis(d))
}

// millis is d in milliseconds with microsecond precision, the unit of every
// duration in the API.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
