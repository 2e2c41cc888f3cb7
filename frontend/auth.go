package frontend

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"faas/proxies/faas"
)

// tokenBytes is the entropy of a bearer token: far beyond guessing.
const tokenBytes = 32

// newToken returns a fresh bearer token and the hash under which it is
// stored. Only the hash leaves this process, so a leaked database does not
// hand out working tokens.
func newToken() (token, hash string, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("generate token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token), nil
}

// hashToken is the stored form of a token. A fast hash is enough: tokens
// are random, so there is no dictionary to try.
func hashToken(token string) string { return keyOf(token).hex() }

// tokenKey is a token's hash as the caches hold it: the bytes, since
// encoding them in hex cost every request two allocations that only a
// lookup in the Store needs.
type tokenKey [sha256.Size]byte

func keyOf(token string) tokenKey { return sha256.Sum256([]byte(token)) }

// hex is the key as the Store holds it.
func (k tokenKey) hex() string { return hex.EncodeToString(k[:]) }

// bearerToken extracts the token from an Authorization header. It checks
// the token's shape here so that garbage costs no database round trip.
func bearerToken(header string) (string, error) {
	if header == "" {
		return "", faas.Errorf(faas.Unauthorized, "missing Authorization header, want Bearer <token>")
	}
	token, ok := bearer(header)
	if !ok {
		return "", faas.Errorf(faas.Unauthorized, "malformed Authorization header, want Bearer <token>")
	}
	if !tokenShaped(token) {
		return "", faas.Errorf(faas.Unauthorized, "malformed bearer token")
	}
	return token, nil
}

// tokenShaped reports whether token is tokenBytes in unpadded base64url, as
// newToken makes them, without decoding it into a buffer of its own.
func tokenShaped(token string) bool {
	if len(token) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	for i := 0; i < len(token); i++ {
		switch b := token[i]; {
		case 'A' <= b && b <= 'Z', 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-', b == '_':
		default:
			return false
		}
	}
	return true
}

// bearer returns the token of a "Bearer <token>" header, whatever its shape.
func bearer(header string) (string, bool) {
	scheme, token, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// errBadToken answers a well-formed token that matches no user.
var errBadToken = faas.Errorf(faas.Unauthorized, "invalid bearer token")

// tokenTTL bounds how long a deleted user's token can still work here:
// a token's user is remembered for tokenTTL from the lookup, and beyond
// that only while this process can prove it would have heard of the
// deletion (tokenCache.get).
const tokenTTL = 5 * time.Second

// tokenMaxAge is how long a token's user is remembered at most, while
// this process keeps up with the queue's events: it bounds what a
// deletion the queue never heard of (the frontend that made it could not
// reach the queue) leaves behind on other frontends.
const tokenMaxAge = 5 * time.Minute

// tokenCacheSize bounds the memory the cache can take.
const tokenCacheSize = 10000

// tokenCache remembers token key -> user name for ttl, or, with trust,
// longer. Only hits on real users are stored, so random tokens cannot
// fill it.
type tokenCache struct {
	ttl time.Duration
	max int
	// maxAge and caughtUp, when set (trust), keep an entry past ttl.
	maxAge   time.Duration
	caughtUp func() time.Time

	mu      sync.Mutex
	entries map[tokenKey]cached
	// gen counts forgets: a lookup that began before one may have found
	// a user since deleted, and must not cache it.
	gen uint64
}

type cached struct {
	user string
	at   time.Time
}

func newTokenCache(ttl time.Duration, max int) *tokenCache {
	return &tokenCache{ttl: ttl, max: max, entries: make(map[tokenKey]cached)}
}

// trust keeps entries up to maxAge old while caughtUp (the watch of the
// queue's events, jqproxy.Watch.CaughtUp) is less than ttl ago. Why that
// is as safe as ttl alone: a user's tokens are voided in the Store first,
// then the queue is told, and its UserRevoked event (or a gap in the
// events, which forgets everything) reaches forget here. An entry is
// either put before that forget, which drops it, or after it, which the
// generation check refuses unless the lookup began after the forget, and
// then read the Store after the change. So an entry outlives a
// revocation only until the watch follows the revocation's event, and
// caughtUp less than ttl ago means every event added to the queue more
// than ttl ago has been followed: a token revoked through the queue stops
// working here within ttl, as with ttl alone. A revocation the queue
// never heard of (voidTokens logs it) is bounded by maxAge instead.
// Call it before the cache is used.
func (tc *tokenCache) trust(maxAge time.Duration, caughtUp func() time.Time) {
	tc.maxAge, tc.caughtUp = maxAge, caughtUp
}

// valid reports whether e may still be used at now. Callers hold mu.
func (tc *tokenCache) valid(e cached, now time.Time) bool {
	age := now.Sub(e.at)
	if age < tc.ttl {
		return true
	}
	return tc.caughtUp != nil && age < tc.maxAge && now.Sub(tc.caughtUp()) < tc.ttl
}

func (tc *tokenCache) get(hash tokenKey, now time.Time) (string, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	e, ok := tc.entries[hash]
	if !ok {
		return "", false
	}
	if !tc.valid(e, now) {
		delete(tc.entries, hash)
		return "", false
	}
	return e.user, true
}

// generation is the count of forgets, to pass to put.
func (tc *tokenCache) generation() uint64 {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.gen
}

// put caches a lookup that began at generation gen, unless a forget came
// since.
func (tc *tokenCache) put(hash tokenKey, user string, now time.Time, gen uint64) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if gen != tc.gen {
		return
	}
	if len(tc.entries) >= tc.max {
		tc.evict(now)
	}
	tc.entries[hash] = cached{user: user, at: now}
}

// evict makes room: expired entries first, then arbitrary ones (map order),
// which only costs their owners one extra lookup.
func (tc *tokenCache) evict(now time.Time) {
	for h, e := range tc.entries {
		if !tc.valid(e, now) {
			delete(tc.entries, h)
		}
	}
	for h := range tc.entries {
		if len(tc.entries) < tc.max {
			return
		}
		delete(tc.entries, h)
	}
}

// forget drops every token of user ("" for every user), so a deleted
// user is locked out of this process at once.
func (tc *tokenCache) forget(user string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.gen++
	for h, e := range tc.entries {
		if user == "" || e.user == user {
			delete(tc.entries, h)
		}
	}
}

// userKey is where the authenticate middleware leaves the caller's name.
const userKey = "faas.user"

// authenticate resolves the bearer token to a user name and leaves it in
// the context; it answers 401 on any doubt. With auth off it lets
// everything through and leaves no name.
func (s *Server) authenticate(c *gin.Context) {
	if !s.cfg.authOn() {
		return
	}
	user, err := s.tokenUser(c.Request.Context(), func() string { return s.clientAddr(c) }, c.GetHeader("Authorization"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(userKey, user)
}

// tokenUser returns the name of the user holding the token in header,
// sent from the address addr returns, which only a miss in the cache
// needs.
func (s *Server) tokenUser(ctx context.Context, addr func() string, header string) (string, error) {
	token, err := bearerToken(header)
	if err != nil {
		return "", err
	}
	key := keyOf(token)
	// The entry is dated from before the Store read, so its age bounds
	// how long ago the Store last said the token was valid.
	now := time.Now()
	if user, ok := s.tokens.get(key, now); ok {
		return user, nil
	}
	if err := s.mayLookUp(key, addr()); err != nil {
		return "", err
	}
	gen := s.tokens.generation()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	u, err := s.store.UserByToken(ctx, key.hex())
	if faas.ErrorCode(err) == faas.NotFound {
		s.rememberBad(key)
		return "", errBadToken
	}
	if err != nil {
		return "", fmt.Errorf("look up token: %w", err)
	}
	s.tokens.put(key, u.Name, now, gen)
	return u.Name, nil
}

// ownsUser lets a request on /u/:u through only for the token of :u; any
// other valid token is forbidden (403: the caller is known, just not
// allowed). The answer does not depend on whether :u exists, so it
// reveals nothing.
func (s *Server) ownsUser(c *gin.Context) {
	if !s.cfg.authOn() {
		return
	}
	if c.GetString(userKey) != c.Param("u") {
		s.fail(c, faas.Errorf(faas.Forbidden, "the bearer token does not grant access to this user"))
	}
}

// mayRead reports whether the caller may see a job of owner. Another user's
// job must look exactly like a missing one.
func (s *Server) mayRead(c *gin.Context, owner string) bool {
	return !s.cfg.authOn() || c.GetString(userKey) == owner
}
