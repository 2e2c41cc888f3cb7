package frontend

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"faas/proxies/faas"
)

// SubscriptionView is a function's subscription as the API shows it.
type SubscriptionView struct {
	Topic    string    `json:"topic"`
	Function string    `json:"function"`
	Created  time.Time `json:"created"`
}

// TopicView is one of a user's topics with the functions subscribed to
// it, in name order. A topic exists while a function subscribes to it.
type TopicView struct {
	Topic     string   `json:"topic"`
	Functions []string `json:"functions"`
}

func (s *Server) subscribe(c *gin.Context) {
	owner, name, topic := c.Param("u"), c.Param("f"), c.Param("topic")
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	created, err := s.store.Subscribe(ctx, faas.Subscription{Owner: owner, Function: name, Topic: topic, Created: s.clock.now()})
	if err != nil {
		s.fail(c, fmt.Errorf("subscribe %s/%s to %s: %w", owner, name, topic, err))
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	ok(c, status, topic)
}

func (s *Server) unsubscribe(c *gin.Context) {
	owner, name, topic := c.Param("u"), c.Param("f"), c.Param("topic")
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	if err := s.store.Unsubscribe(ctx, owner, name, topic); err != nil {
		s.fail(c, fmt.Errorf("unsubscribe %s/%s from %s: %w", owner, name, topic, err))
		return
	}
	ok(c, http.StatusOK, topic)
}

// listSubscriptions lists a function's topics. A function without any
// and no function at all differ: the latter is 404, so that a typo in
// the name is not mistaken for an empty list.
func (s *Server) listSubscriptions(c *gin.Context) {
	owner, name := c.Param("u"), c.Param("f")
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	subs, err := s.store.Subscriptions(ctx, owner, faas.SubscriptionFilter{Function: name})
	if err == nil && len(subs) == 0 {
		_, err = s.store.Function(ctx, owner, name)
	}
	if err != nil {
		s.fail(c, fmt.Errorf("list subscriptions of %s/%s: %w", owner, name, err))
		return
	}
	out := make([]SubscriptionView, len(subs))
	for i, sub := range subs {
		out[i] = SubscriptionView{Topic: sub.Topic, Function: sub.Function, Created: sub.Created}
	}
	ok(c, http.StatusOK, out)
}

// listTopics lists the user's topics, in name order, each with its
// subscribers; the Store answers the subscriptions in that order.
func (s *Server) listTopics(c *gin.Context) {
	owner := c.Param("u")
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	subs, err := s.store.Subscriptions(ctx, owner, faas.SubscriptionFilter{})
	if err != nil {
		s.fail(c, fmt.Errorf("list topics of %s: %w", owner, err))
		return
	}
	out := []TopicView{}
	for _, sub := range subs {
		if n := len(out); n == 0 || out[n-1].Topic != sub.Topic {
			out = append(out, TopicView{Topic: sub.Topic})
		}
		last := &out[len(out)-1]
		last.Functions = append(last.Functions, sub.Function)
	}
	ok(c, http.StatusOK, out)
}

// publish runs every function subscribed to the topic once with the body
// as its one argument and answers 202 with their job ids. Without an
// Idempotency-Key the publish gets a random one, so that the JQ manager,
// which derives the ids from it, makes even a resent request one
// publish; with one, a retry through any frontend answers the same ids.
func (s *Server) publish(c *gin.Context) {
	owner, topic := c.Param("u"), c.Param("topic")
	key, err := idempotencyKey(c.Request.Header)
	if err != nil {
		s.fail(c, err)
		return
	}
	if key == "" {
		key = uuid.NewString()
	}
	event, err := readBody(c, maxArgsBytes, "event")
	if err != nil {
		s.fail(c, err)
		return
	}
	if !json.Valid(event) {
		s.fail(c, faas.Errorf(faas.Invalid, "the event published to %s is not JSON: send one JSON value as the body", topic))
		return
	}
	// Each subscriber's job holds the event in its argument array.
	ctx, done, err := s.admitJob(c, owner, len(event)+2, 0)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer done()
	ids, err := s.queue.Publish(ctx, owner, topic, event, key)
	if err != nil {
		s.fail(c, fmt.Errorf("publish to %s/%s: %w", owner, topic, err))
		return
	}
	ok(c, http.StatusAccepted, ids)
}
