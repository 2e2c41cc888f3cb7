package frontend

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"faas/internal/backoff"
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
// forget them too. If the queue does not hear, it is told again in the
// background (tellRevoked).
func (s *Server) voidTokens(ctx context.Context, name string, change func() error, tell func(context.Context, string) error) error {
	s.tokens.forget(name)
	err := change()
	s.tokens.forget(name)
	if err != nil {
		return err
	}
	if err := tell(ctx, name); err != nil {
		s.log.Warn("the queue did not hear that the user's tokens are void; telling it again", "user", name, "err", err)
		s.tellRevoked(name)
	}
	return nil
}

// tellRetry spaces out the tries of tellRevoked.
var tellRetry = backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second}

// tellRevoked has the queue tell every frontend that name's tokens are
// void, trying until it hears: other frontends that keep up with the
// queue's events would otherwise keep the tokens for up to tokenMaxAge,
// after which nobody has them and it stops trying; so does Run's end.
// It only revokes tokens (RevokeTokens), even for a deleted user: a late
// ForgetUser could drop the jobs of a new user of the same name, a late
// revocation only costs that user's tokens one more lookup.
func (s *Server) tellRevoked(name string) {
	s.background.Go(func() {
		ctx, cancel := context.WithTimeout(s.draining, s.cfg.tokenMaxAge)
		defer cancel()
		for failures := 1; tellRetry.Sleep(ctx, failures); failures++ {
			tctx, tcancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
			err := s.queue.RevokeTokens(tctx, name)
			tcancel()
			if err == nil {
				s.log.Info("the queue heard that the user's tokens are void", "user", name, "tries", failures+1)
				return
			}
		}
		s.log.Warn("stopped telling the queue that the user's tokens are void", "user", name, "err", ctx.Err())
	})
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
