package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"faas/frontend"
	"faas/frontend/client"
	"faas/proxies/faas"
)

func newJobCmd(f *Factory) *cobra.Command {
	cmd := noun("job", "List, inspect, follow and remove jobs", newJobLsCmd(f))
	for _, v := range []struct{ use, short string }{
		{"get", "Show a job's record"},
		{"res", "Print a finished job's result"},
		{"rm", "Remove a job, stopping it if it runs"},
	} {
		o := &JobOptions{F: f, Verb: v.use}
		cmd.AddCommand(&cobra.Command{
			Use:   v.use + " <id>",
			Short: v.short,
			Args:  exactArgs("id"),
			RunE:  withJSON(&o.JSON, func(args []string) { o.ID = args[0] }, func(ctx context.Context) error { return runJob(ctx, o) }),
		})
	}
	cmd.AddCommand(newJobLogsCmd(f))
	return cmd
}

// JobLsOptions are faas job ls's.
type JobLsOptions struct {
	F      *Factory
	Filter client.JobFilter
	JSON   bool
}

func newJobLsCmd(f *Factory) *cobra.Command {
	o := &JobLsOptions{F: f}
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the jobs, newest first",
		Args:    exactArgs(),
		RunE:    withJSON(&o.JSON, nil, func(ctx context.Context) error { return runJobLs(ctx, o) }),
	}
	cmd.Flags().StringVar(&o.Filter.Function, "fn", "", "only this function's jobs")
	cmd.Flags().StringVar(&o.Filter.State, "state", "", "only jobs in this state: queued, running, succeeded or failed")
	cmd.Flags().IntVar(&o.Filter.Limit, "limit", 20, "at most this many jobs (1 to 500)")
	cmd.Flags().StringVar(&o.Filter.Cursor, "cursor", "", "the next_cursor of a previous page (-o json shows it)")
	return cmd
}

func runJobLs(ctx context.Context, o *JobLsOptions) error {
	switch faas.JobState(o.Filter.State) {
	case "", faas.Queued, faas.Running, faas.Succeeded, faas.Failed:
	default:
		return usagef("--state %q: want queued, running, succeeded or failed", o.Filter.State)
	}
	if o.Filter.Limit < 1 || o.Filter.Limit > 500 {
		return usagef("--limit %d: want 1 to 500", o.Filter.Limit)
	}
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	page, err := c.Jobs(ctx, o.Filter)
	if err != nil {
		return err
	}
	if o.JSON {
		if page.Jobs == nil {
			page.Jobs = []frontend.JobSummary{}
		}
		return printJSON(o.F.IO.Out, page)
	}
	tw := tabwriter.NewWriter(o.F.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFUNCTION\tSTATE\tCREATED\tDURATION\tERROR")
	for _, j := range page.Jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Function, j.State, j.Created.Local().Format(time.DateTime), elapsed(j.DurationMS), j.ErrorCode)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.NextCursor != "" {
		fmt.Fprintf(o.F.IO.Err, "more: faas job ls --cursor %s\n", page.NextCursor)
	}
	return nil
}

// JobOptions are those of faas job get, res and rm, which differ only in
// Verb.
type JobOptions struct {
	F    *Factory
	Verb string
	ID   string
	JSON bool
}

func runJob(ctx context.Context, o *JobOptions) error {
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	switch o.Verb {
	case "get":
		info, err := c.Info(ctx, o.ID)
		if err != nil {
			return err
		}
		if o.JSON {
			return printJSON(o.F.IO.Out, info)
		}
		return printInfo(o.F.IO, info)
	case "res":
		res, err := c.Result(ctx, o.ID)
		if err != nil {
			return err
		}
		return printValue(o.F.IO, res)
	default:
		if err := c.DeleteJob(ctx, o.ID); err != nil {
			return err
		}
		fmt.Fprintf(o.F.IO.Out, "removed %s\n", o.ID)
		return nil
	}
}

// printInfo shows a job's record for people.
func printInfo(s *IOStreams, j frontend.JobInfo) error {
	tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id:\t%s\nfunction:\t%s\nargs:\t%s\nstate:\t%s\nattempts:\t%d\n", j.ID, j.Function, j.Args, j.State, j.Attempts)
	for _, t := range []struct {
		name string
		at   *time.Time
	}{{"created", j.Created}, {"started", j.Started}, {"finished", j.Finished}} {
		if t.at != nil {
			fmt.Fprintf(tw, "%s:\t%s\n", t.name, t.at.Local().Format(time.DateTime+".000"))
		}
	}
	fmt.Fprintf(tw, "duration:\t%s\nbilled:\t%s\n", elapsed(j.DurationMS), elapsed(j.BilledMS))
	if j.Error != nil {
		fmt.Fprintf(tw, "error:\t%s\n", j.Error)
	}
	for _, l := range j.Lost {
		fmt.Fprintf(tw, "lost:\t%s\n", l)
	}
	for _, f := range []struct{ name, value string }{
		{"trigger", j.Trigger}, {"parent", j.Parent}, {"children", strings.Join(j.Children, " ")},
	} {
		if f.value != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", f.name, f.value)
		}
	}
	for _, c := range j.Calls {
		outcome := "ok"
		if c.Error != nil {
			outcome = c.Error.Error()
		}
		fmt.Fprintf(tw, "call:\t%s (version %d) %s: %s\n", c.Function, c.Version, elapsed(c.DurationMS), outcome)
	}
	if j.CallsTruncated {
		fmt.Fprintf(tw, "call:\t... more calls than a record keeps (%d)\n", faas.MaxCalls)
	}
	return tw.Flush()
}

// JobLogsOptions are faas job logs's.
type JobLogsOptions struct {
	F      *Factory
	ID     string
	Follow bool
	JSON   bool
}

func newJobLogsCmd(f *Factory) *cobra.Command {
	o := &JobLogsOptions{F: f}
	cmd := &cobra.Command{
		Use:   "logs <id>",
		Short: "Print what a job printed; -f follows it until it ends",
		Args:  exactArgs("id"),
		RunE:  withJSON(&o.JSON, func(args []string) { o.ID = args[0] }, func(ctx context.Context) error { return runJobLogs(ctx, o) }),
	}
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "print lines as they come until the job ends")
	return cmd
}

func runJobLogs(ctx context.Context, o *JobLogsOptions) error {
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	if !o.Follow {
		if o.JSON {
			lines, err := c.LogLines(ctx, o.ID)
			if err != nil {
				return err
			}
			return printJSON(o.F.IO.Out, lines)
		}
		logs, err := c.Logs(ctx, o.ID)
		if err != nil {
			return err
		}
		if logs != "" {
			fmt.Fprintln(o.F.IO.Out, strings.TrimRight(logs, "\n"))
		}
		return nil
	}
	state, err := followLogs(ctx, c, o.ID, func(l faas.LogLine) error {
		if o.JSON {
			return printJSON(o.F.IO.Out, l)
		}
		_, err := fmt.Fprintln(o.F.IO.Out, l.Line)
		return err
	})
	if err != nil {
		return err
	}
	if state == faas.Failed {
		// Like faas run: a failed job is the function's failure, exit 1.
		info, err := c.Info(ctx, o.ID)
		if err != nil {
			return err
		}
		e := info.Error
		if e == nil {
			e = faas.Errorf(faas.FunctionError, "job %s failed", o.ID)
		}
		return &client.HTTPError{Status: http.StatusUnprocessableEntity, Err: e}
	}
	return nil
}

// followReconnects is how many times faas job logs -f picks a stream up
// again after it broke (a frontend restarting, a proxy timing out).
const followReconnects = 3

// followLogs follows a job's log to its end, resuming a broken stream
// after the last line printed, so no line is shown twice or lost.
func followLogs(ctx context.Context, c *client.Client, id string, emit func(faas.LogLine) error) (faas.JobState, error) {
	last := -1
	for try := 0; ; try++ {
		state, err := c.FollowLogs(ctx, id, last, func(l faas.LogLine) error {
			last = l.Offset
			return emit(l)
		})
		if faas.ErrorCode(err) != faas.Unavailable || try == followReconnects || ctx.Err() != nil {
			return state, err
		}
	}
}

// UsageOptions are faas usage's.
type UsageOptions struct {
	F    *Factory
	JSON bool
}

func newUsageCmd(f *Factory) *cobra.Command {
	o := &UsageOptions{F: f}
	return &cobra.Command{
		Use:   "usage",
		Short: "Show the billed execution time",
		Args:  exactArgs(),
		RunE:  withJSON(&o.JSON, nil, func(ctx context.Context) error { return runUsage(ctx, o) }),
	}
}

func runUsage(ctx context.Context, o *UsageOptions) error {
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	d, err := c.BilledTime(ctx)
	if err != nil {
		return err
	}
	if o.JSON {
		return printJSON(o.F.IO.Out, map[string]any{"user": c.User(), "billed_ms": float64(d) / float64(time.Millisecond)})
	}
	fmt.Fprintf(o.F.IO.Out, "%s: billed %s\n", c.User(), d)
	return nil
}

// elapsed shows a time in milliseconds as a duration.
func elapsed(ms float64) string {
	return time.Duration(ms * float64(time.Millisecond)).Round(time.Microsecond).String()
}
