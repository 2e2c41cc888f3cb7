package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"faas/frontend"
)

func newTopicCmd(f *Factory) *cobra.Command {
	return noun("topic", "Publish events to your topics and list them",
		newTopicPublishCmd(f), newTopicLsCmd(f))
}

// TopicOptions are the options of faas topic publish and ls.
type TopicOptions struct {
	F     *Factory
	Topic string
	// Event is the JSON value publish sends.
	Event string
	// IdempotencyKey makes a retried publish answer the first one's jobs.
	IdempotencyKey string
	JSON           bool
}

func newTopicPublishCmd(f *Factory) *cobra.Command {
	o := &TopicOptions{F: f}
	cmd := &cobra.Command{
		Use:   "publish <topic> <json>",
		Short: "Publish an event: every function subscribed to the topic runs once with it",
		Args:  exactArgs("topic", "json"),
		RunE: withJSON(&o.JSON, func(args []string) { o.Topic, o.Event = args[0], args[1] },
			func(ctx context.Context) error { return runTopicPublish(ctx, o) }),
	}
	cmd.Flags().StringVar(&o.IdempotencyKey, "idempotency-key", "", "a retry with the same key starts no job twice and prints the same ids")
	return cmd
}

func runTopicPublish(ctx context.Context, o *TopicOptions) error {
	// A typo in the event is a usage error before anything is sent.
	if !json.Valid([]byte(o.Event)) {
		return usagef("event %.60q: want one JSON value, such as '{\"id\": 7}'", o.Event)
	}
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	ids, err := c.Publish(ctx, o.Topic, json.RawMessage(o.Event), o.IdempotencyKey)
	if err != nil {
		return err
	}
	if ids == nil {
		ids = []string{}
	}
	if o.JSON {
		return printJSON(o.F.IO.Out, ids)
	}
	if len(ids) == 0 {
		fmt.Fprintf(o.F.IO.Out, "no function subscribes to %s: nothing runs\n", o.Topic)
	}
	for _, id := range ids {
		fmt.Fprintln(o.F.IO.Out, id)
	}
	return nil
}

func newTopicLsCmd(f *Factory) *cobra.Command {
	o := &TopicOptions{F: f}
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List your topics with the functions subscribed to each",
		Args:    exactArgs(),
		RunE:    withJSON(&o.JSON, nil, func(ctx context.Context) error { return runTopicLs(ctx, o) }),
	}
}

func runTopicLs(ctx context.Context, o *TopicOptions) error {
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	topics, err := c.Topics(ctx)
	if err != nil {
		return err
	}
	return printRows(o.F.IO.Out, o.JSON, topics, "TOPIC\tSUBSCRIBERS", func(t frontend.TopicView) string {
		return t.Topic + "\t" + strings.Join(t.Functions, ",")
	})
}

func newFnSubCmd(f *Factory) *cobra.Command {
	return noun("sub", "Subscribe a function to your topics, unsubscribe it, list its topics",
		newFnSubEditCmd(f, "add", "Subscribe a function to a topic: each event published to it runs the function once", runFnSubAdd),
		newFnSubEditCmd(f, "rm", "Unsubscribe a function from a topic", runFnSubRm),
		newFnSubLsCmd(f))
}

// FnSubOptions are the options of faas fn sub add, rm and ls.
type FnSubOptions struct {
	F        *Factory
	Function string
	Topic    string
	JSON     bool
}

// newFnSubEditCmd is fn sub add or rm: both take a function and a topic.
func newFnSubEditCmd(f *Factory, use, short string, run func(context.Context, *FnSubOptions) error) *cobra.Command {
	o := &FnSubOptions{F: f}
	return &cobra.Command{
		Use:   use + " <fn> <topic>",
		Short: short,
		Args:  exactArgs("fn", "topic"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Function, o.Topic = args[0], args[1]
			return run(cmd.Context(), o)
		},
	}
}

func runFnSubAdd(ctx context.Context, o *FnSubOptions) error {
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	created, err := c.Subscribe(ctx, o.Function, o.Topic)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(o.F.IO.Out, "subscribed %s to %s\n", o.Function, o.Topic)
	} else {
		fmt.Fprintf(o.F.IO.Out, "%s was already subscribed to %s\n", o.Function, o.Topic)
	}
	return nil
}

func runFnSubRm(ctx context.Context, o *FnSubOptions) error {
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	if err := c.Unsubscribe(ctx, o.Function, o.Topic); err != nil {
		return err
	}
	fmt.Fprintf(o.F.IO.Out, "unsubscribed %s from %s\n", o.Function, o.Topic)
	return nil
}

func newFnSubLsCmd(f *Factory) *cobra.Command {
	o := &FnSubOptions{F: f}
	return &cobra.Command{
		Use:     "ls <fn>",
		Aliases: []string{"list"},
		Short:   "List the topics a function subscribes to",
		Args:    exactArgs("fn"),
		RunE:    withJSON(&o.JSON, func(args []string) { o.Function = args[0] }, func(ctx context.Context) error { return runFnSubLs(ctx, o) }),
	}
}

func runFnSubLs(ctx context.Context, o *FnSubOptions) error {
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	subs, err := c.Subscriptions(ctx, o.Function)
	if err != nil {
		return err
	}
	return printRows(o.F.IO.Out, o.JSON, subs, "TOPIC\tSUBSCRIBED", func(s frontend.SubscriptionView) string {
		return s.Topic + "\t" + s.Created.Local().Format(time.DateTime)
	})
}
