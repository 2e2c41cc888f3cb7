package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"faas/frontend"
)

func newFnScheduleCmd(f *Factory) *cobra.Command {
	return noun("schedule", "Run a function on a schedule, show it or stop it",
		newFnScheduleSetCmd(f), newFnScheduleGetCmd(f), newFnScheduleRmCmd(f))
}

// FnScheduleOptions are the options of faas fn schedule set, get and rm.
type FnScheduleOptions struct {
	F        *Factory
	Function string
	// Cron, Timezone, Args and ArgsJSON are what set puts.
	Cron     string
	Timezone string
	Args     []string
	ArgsJSON string
	JSON     bool
}

func newFnScheduleSetCmd(f *Factory) *cobra.Command {
	o := &FnScheduleOptions{F: f}
	cmd := &cobra.Command{
		Use:   "set <fn> <cron> [args...]",
		Short: "Run a function on a schedule, replacing the one it has",
		Long: `Each tick runs the function once with the arguments, as faas run would.
The schedule is five cron fields (quote them as one argument), @hourly,
@daily and the like, or @every and a duration of whole seconds:

  faas fn schedule set report "0 9 * * 1-5" --tz Europe/Madrid
  faas fn schedule set poll "@every 30s" https://example.com

Ticks missed while the platform was down fire once, when it is back.`,
		Args: minArgs("fn", "cron"),
		RunE: withJSON(&o.JSON, func(args []string) { o.Function, o.Cron, o.Args = args[0], args[1], args[2:] },
			func(ctx context.Context) error { return runFnScheduleSet(ctx, o) }),
	}
	cmd.Flags().StringVar(&o.Timezone, "tz", "", "the IANA zone the cron fields are read in (default UTC)")
	cmd.Flags().StringVar(&o.ArgsJSON, "json", "", "the arguments as one JSON array, instead of positional arguments")
	return cmd
}

func runFnScheduleSet(ctx context.Context, o *FnScheduleOptions) error {
	args, err := jobArgs(o.ArgsJSON, o.Args)
	if err != nil {
		return err
	}
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	v, err := c.PutSchedule(ctx, o.Function, frontend.ScheduleRequest{Cron: o.Cron, Args: args, Timezone: o.Timezone})
	if err != nil {
		return err
	}
	return printSchedule(o.F.IO.Out, v, o.JSON)
}

func newFnScheduleGetCmd(f *Factory) *cobra.Command {
	o := &FnScheduleOptions{F: f}
	return &cobra.Command{
		Use:   "get <fn>",
		Short: "Show a function's schedule and when it fires next",
		Args:  exactArgs("fn"),
		RunE:  withJSON(&o.JSON, func(args []string) { o.Function = args[0] }, func(ctx context.Context) error { return runFnScheduleGet(ctx, o) }),
	}
}

func runFnScheduleGet(ctx context.Context, o *FnScheduleOptions) error {
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	v, err := c.Schedule(ctx, o.Function)
	if err != nil {
		return err
	}
	return printSchedule(o.F.IO.Out, v, o.JSON)
}

// printSchedule shows a schedule as JSON, or as lines for a person, with
// times in the reader's local zone.
func printSchedule(w io.Writer, v frontend.ScheduleView, asJSON bool) error {
	if asJSON {
		return printJSON(w, v)
	}
	last := "never"
	if v.LastTick != nil {
		last = v.LastTick.Local().Format(time.DateTime)
	}
	next := make([]string, len(v.Next))
	for i, t := range v.Next {
		next[i] = t.Local().Format(time.DateTime)
	}
	_, err := fmt.Fprintf(w, "function  %s\ncron      %s (%s)\nargs      %s\nlast tick %s\nnext      %s\n",
		v.Function, v.Cron, v.Timezone, v.Args, last, strings.Join(next, "\n          "))
	return err
}

func newFnScheduleRmCmd(f *Factory) *cobra.Command {
	o := &FnScheduleOptions{F: f}
	return &cobra.Command{
		Use:   "rm <fn>",
		Short: "Stop a function's schedule",
		Args:  exactArgs("fn"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Function = args[0]
			return runFnScheduleRm(cmd.Context(), o)
		},
	}
}

func runFnScheduleRm(ctx context.Context, o *FnScheduleOptions) error {
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	if err := c.DeleteSchedule(ctx, o.Function); err != nil {
		return err
	}
	fmt.Fprintf(o.F.IO.Out, "stopped the schedule of %s\n", o.Function)
	return nil
}
