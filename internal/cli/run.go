package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"faas/frontend/client"
	"faas/proxies/faas"
)

// serverWait is the longest ?wait the API grants; a longer job is polled.
const serverWait = 60 * time.Second

// pollEvery is the pause between two reads of an unfinished job's result.
const pollEvery = 250 * time.Millisecond

// RunOptions are faas run's.
type RunOptions struct {
	F    *Factory
	Name string
	// Args are the positional arguments, each JSON if valid JSON, else a string.
	Args []string
	// ArgsJSON is --json: the whole argument array as is.
	ArgsJSON       string
	Async          bool
	IdempotencyKey string
	JSON           bool
}

func newRunCmd(f *Factory) *cobra.Command {
	o := &RunOptions{F: f}
	cmd := &cobra.Command{
		Use:   "run <name> [args...]",
		Short: "Run a function and print its result",
		Long: `Run a function with arguments and print its result. Each argument is JSON
when it is valid JSON and a string otherwise: faas run add 4 5 sends [4,5],
faas run greet bob sends ["bob"]. --json passes a whole JSON array instead.
It waits for the result unless --async, which prints the job id.`,
		Args: minArgs("name"),
		RunE: withJSON(&o.JSON, func(args []string) { o.Name, o.Args = args[0], args[1:] }, func(ctx context.Context) error { return runRun(ctx, o) }),
	}
	cmd.Flags().BoolVar(&o.Async, "async", false, "print the job id instead of waiting")
	cmd.Flags().StringVar(&o.ArgsJSON, "json", "", "the arguments as one JSON array, instead of positional arguments")
	cmd.Flags().StringVar(&o.IdempotencyKey, "idempotency-key", "", "a retry with the same key answers like the first submission")
	return cmd
}

// jobArgs builds the argument array from --json or the positional ones.
func jobArgs(asJSON string, args []string) (json.RawMessage, error) {
	if asJSON != "" {
		if len(args) > 0 {
			return nil, usagef("give the arguments either positionally or with --json, not both")
		}
		var arr []json.RawMessage
		if err := json.Unmarshal([]byte(asJSON), &arr); err != nil || arr == nil {
			return nil, usagef("--json %.60q: want a JSON array, such as [4,5]", asJSON)
		}
		return json.RawMessage(asJSON), nil
	}
	vals := make([]json.RawMessage, len(args))
	for i, a := range args {
		if json.Valid([]byte(a)) {
			vals[i] = json.RawMessage(a)
		} else {
			s, _ := json.Marshal(a)
			vals[i] = s
		}
	}
	return json.Marshal(vals)
}

func runRun(ctx context.Context, o *RunOptions) error {
	args, err := jobArgs(o.ArgsJSON, o.Args)
	if err != nil {
		return err
	}
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	r := client.Run{Args: args, IdempotencyKey: o.IdempotencyKey}
	if !o.Async {
		r.Wait = serverWait
	}
	stop := o.F.IO.StartSpinner("running " + o.Name)
	out, err := c.Run(ctx, o.Name, r)
	if err == nil && !o.Async {
		out, err = awaitResult(ctx, c, out)
	}
	stop()
	if err != nil {
		return withJob(err, out.JobID)
	}
	if o.Async {
		if o.JSON {
			return printJSON(o.F.IO.Out, map[string]string{"id": out.JobID})
		}
		fmt.Fprintln(o.F.IO.Out, out.JobID)
		return nil
	}
	return printValue(o.F.IO, out.Result)
}

// awaitResult polls a job that outlived the server's wait until it ends.
func awaitResult(ctx context.Context, c *client.Client, o client.Outcome) (client.Outcome, error) {
	for !o.Done {
		res, err := c.Result(ctx, o.JobID)
		switch {
		case err == nil:
			o.Done, o.Result = true, res
		case faas.ErrorCode(err) != faas.NotFinished:
			return o, err
		default:
			select {
			case <-ctx.Done():
				return o, fmt.Errorf("job %s still runs: %w", o.JobID, ctx.Err())
			case <-time.After(pollEvery):
			}
		}
	}
	return o, nil
}

// withJob names the job in a failed job's error, so the user can look at
// its logs.
func withJob(err error, id string) error {
	if id == "" || !client.JobFailed(err) {
		return err
	}
	return fmt.Errorf("%w (job %s)", err, id)
}

// printValue prints a JSON result, indented on a terminal, compact (one
// line) for a script.
func printValue(s *IOStreams, v json.RawMessage) error {
	var b []byte
	if s.IsTTY {
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return err
		}
		b, _ = json.MarshalIndent(x, "", "  ")
	} else {
		b = v
	}
	_, err := fmt.Fprintf(s.Out, "%s\n", b)
	return err
}

// FnTestOptions are faas fn test's.
type FnTestOptions struct {
	F        *Factory
	File     string
	Args     []string
	ArgsJSON string
	Timeout  time.Duration
	MemoryMB int
	JSON     bool
}

func newFnTestCmd(f *Factory) *cobra.Command {
	o := &FnTestOptions{F: f}
	cmd := &cobra.Command{
		Use:   "test <file.js> [args...]",
		Short: "Run a source once without storing it: result, logs and duration",
		Args:  minArgs("file.js"),
		RunE:  withJSON(&o.JSON, func(args []string) { o.File, o.Args = args[0], args[1:] }, func(ctx context.Context) error { return runFnTest(ctx, o) }),
	}
	cmd.Flags().StringVar(&o.ArgsJSON, "json", "", "the arguments as one JSON array")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 0, "time limit, such as 5s")
	cmd.Flags().IntVar(&o.MemoryMB, "memory", 0, "memory cap in MB")
	return cmd
}

// testReport is faas fn test -o json's answer.
type testReport struct {
	Job        string          `json:"job"`
	Result     json.RawMessage `json:"result,omitempty"`
	Error      *faas.Error     `json:"error,omitempty"`
	Logs       string          `json:"logs"`
	DurationMS float64         `json:"duration_ms"`
}

func runFnTest(ctx context.Context, o *FnTestOptions) error {
	args, err := jobArgs(o.ArgsJSON, o.Args)
	if err != nil {
		return err
	}
	src, err := os.ReadFile(o.File)
	if err != nil {
		return usagef("read %s: %v", o.File, err)
	}
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	stop := o.F.IO.StartSpinner("testing " + o.File)
	out, err := c.Try(ctx, string(src), client.Run{Args: args, Wait: serverWait, Timeout: o.Timeout, MemoryMB: o.MemoryMB})
	if err == nil {
		out, err = awaitResult(ctx, c, out)
	}
	stop()
	if out.JobID == "" {
		return err // refused before any job existed
	}
	runErr := err
	if runErr != nil && !client.JobFailed(runErr) {
		return runErr
	}
	info, err := c.Info(ctx, out.JobID)
	if err != nil {
		return err
	}
	logs, err := c.Logs(ctx, out.JobID)
	if err != nil {
		return err
	}
	rep := testReport{Job: out.JobID, Result: out.Result, Error: info.Error, Logs: logs, DurationMS: info.DurationMS}
	if o.JSON {
		if err := printJSON(o.F.IO.Out, rep); err != nil {
			return err
		}
	} else {
		if logs != "" {
			fmt.Fprintf(o.F.IO.Out, "logs:\n%s\n", logs)
		}
		fmt.Fprintf(o.F.IO.Out, "duration: %s\n", elapsed(info.DurationMS))
		if runErr == nil {
			fmt.Fprint(o.F.IO.Out, "result: ")
			if err := printValue(o.F.IO, out.Result); err != nil {
				return err
			}
		}
	}
	return withJob(runErr, out.JobID)
}
