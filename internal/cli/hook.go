package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"faas/frontend"
)

func newFnHookCmd(f *Factory) *cobra.Command {
	return noun("hook", "Create, list and revoke a function's webhooks",
		newFnHookCreateCmd(f), newFnHookLsCmd(f), newFnHookRmCmd(f))
}

// FnHookOptions are the options of faas fn hook create, ls and rm.
type FnHookOptions struct {
	F        *Factory
	Function string
	// ID is the hook rm revokes.
	ID   string
	JSON bool
}

func newFnHookCreateCmd(f *Factory) *cobra.Command {
	o := &FnHookOptions{F: f}
	return &cobra.Command{
		Use:   "create <fn>",
		Short: "Create a webhook; its URL, printed once, runs the function without a token",
		Args:  exactArgs("fn"),
		RunE:  withJSON(&o.JSON, func(args []string) { o.Function = args[0] }, func(ctx context.Context) error { return runFnHookCreate(ctx, o) }),
	}
}

func runFnHookCreate(ctx context.Context, o *FnHookOptions) error {
	cfg, err := o.F.Config()
	if err != nil {
		return err
	}
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	h, err := c.CreateHook(ctx, o.Function)
	if err != nil {
		return err
	}
	// The platform answers the path; the whole URL is what gets pasted
	// into another service.
	h.URL = strings.TrimRight(cfg.URL, "/") + h.URL
	if o.JSON {
		return printJSON(o.F.IO.Out, h)
	}
	fmt.Fprintf(o.F.IO.Out, "%s\nhook %s of %s; the URL is not shown again\n", h.URL, h.ID, h.Function)
	return nil
}

func newFnHookLsCmd(f *Factory) *cobra.Command {
	o := &FnHookOptions{F: f}
	return &cobra.Command{
		Use:     "ls <fn>",
		Aliases: []string{"list"},
		Short:   "List a function's webhooks (their ids, not their URLs)",
		Args:    exactArgs("fn"),
		RunE:    withJSON(&o.JSON, func(args []string) { o.Function = args[0] }, func(ctx context.Context) error { return runFnHookLs(ctx, o) }),
	}
}

func runFnHookLs(ctx context.Context, o *FnHookOptions) error {
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	hooks, err := c.Hooks(ctx, o.Function)
	if err != nil {
		return err
	}
	return printRows(o.F.IO.Out, o.JSON, hooks, "ID\tCREATED", func(h frontend.HookView) string {
		return h.ID + "\t" + h.Created.Local().Format(time.DateTime)
	})
}

func newFnHookRmCmd(f *Factory) *cobra.Command {
	o := &FnHookOptions{F: f}
	return &cobra.Command{
		Use:   "rm <fn> <id>",
		Short: "Revoke a webhook: its URL answers 404 from then on",
		Args:  exactArgs("fn", "id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Function, o.ID = args[0], args[1]
			return runFnHookRm(cmd.Context(), o)
		},
	}
}

func runFnHookRm(ctx context.Context, o *FnHookOptions) error {
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	if err := c.DeleteHook(ctx, o.Function, o.ID); err != nil {
		return err
	}
	fmt.Fprintf(o.F.IO.Out, "revoked hook %s of %s\n", o.ID, o.Function)
	return nil
}
