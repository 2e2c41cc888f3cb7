package cli

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"faas/frontend"
	"faas/frontend/client"
)

func newFnCmd(f *Factory) *cobra.Command {
	return noun("fn", "Deploy, list, show, test and remove functions",
		newFnDeployCmd(f), newFnLsCmd(f), newFnGetCmd(f), newFnRmCmd(f), newFnTestCmd(f), newFnHookCmd(f), newFnScheduleCmd(f), newFnSubCmd(f))
}

// FnDeployOptions are faas fn deploy's.
type FnDeployOptions struct {
	F        *Factory
	Name     string
	File     string
	Timeout  time.Duration
	MemoryMB int
	// Concurrency is --concurrency, nil when not given: 0 means no limit,
	// so it cannot also mean keep.
	Concurrency *int
	// Env and Secrets are the K=V flags as given.
	Env     []string
	Secrets []string
	JSON    bool
}

func newFnDeployCmd(f *Factory) *cobra.Command {
	o := &FnDeployOptions{F: f}
	var concurrency int
	var cmd *cobra.Command
	cmd = &cobra.Command{
		Use:   "deploy <name> <file.js>",
		Short: "Create or replace a function from a file",
		Long: `Create or replace a function from a JavaScript file. Settings left out keep
their previous values. --env and --secret set values the function reads as
faas.env.K; secrets are stored encrypted and never shown again.`,
		Args: exactArgs("name", "file.js"),
		RunE: withJSON(&o.JSON, func(args []string) {
			o.Name, o.File = args[0], args[1]
			if cmd.Flags().Changed("concurrency") {
				o.Concurrency = &concurrency
			}
		}, func(ctx context.Context) error { return runFnDeploy(ctx, o) }),
	}
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 0, "the function's time limit, such as 5s (default: keep, or 30s)")
	cmd.Flags().IntVar(&o.MemoryMB, "memory", 0, "the sandbox's memory cap in MB (default: keep, or the worker's)")
	cmd.Flags().IntVar(&concurrency, "concurrency", 0, "the most jobs of the function running at once, 0 for no limit (default: keep, or no limit)")
	cmd.Flags().StringArrayVar(&o.Env, "env", nil, "K=V the function reads as faas.env.K (repeatable)")
	cmd.Flags().StringArrayVar(&o.Secrets, "secret", nil, "K=V stored encrypted, read as faas.env.K (repeatable)")
	return cmd
}

// envKey is the platform's rule for env and secret names, checked here too
// so a typo is a usage error before anything is sent.
var envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parsePairs turns K=V flags into a map, naming the flag and the bad value.
func parsePairs(flag string, pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, usagef("--%s %q: want KEY=VALUE", flag, p)
		}
		if !envKey.MatchString(k) {
			return nil, usagef("--%s %q: the key must be letters, digits and _, not starting with a digit", flag, p)
		}
		m[k] = v
	}
	return m, nil
}

func runFnDeploy(ctx context.Context, o *FnDeployOptions) error {
	env, err := parsePairs("env", o.Env)
	if err != nil {
		return err
	}
	secrets, err := parsePairs("secret", o.Secrets)
	if err != nil {
		return err
	}
	if o.Timeout < 0 || o.MemoryMB < 0 || (o.Concurrency != nil && *o.Concurrency < 0) {
		return usagef("--timeout, --memory and --concurrency cannot be negative")
	}
	src, err := os.ReadFile(o.File)
	if err != nil {
		return usagef("read %s: %v", o.File, err)
	}
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	st, created, err := c.PutFunction(ctx, o.Name, client.Deploy{Source: string(src), Timeout: o.Timeout, MemoryMB: o.MemoryMB, Concurrency: o.Concurrency, Env: env, Secrets: secrets})
	if err != nil {
		return err
	}
	if o.JSON {
		st.Name = o.Name
		return printJSON(o.F.IO.Out, st)
	}
	verb := "replaced"
	if created {
		verb = "created"
	}
	fmt.Fprintf(o.F.IO.Out, "%s %s (version %d, timeout %s)\n", verb, o.Name, st.Version, msDuration(st.TimeoutMS))
	return nil
}

// FnLsOptions are faas fn ls's.
type FnLsOptions struct {
	F    *Factory
	JSON bool
}

func newFnLsCmd(f *Factory) *cobra.Command {
	o := &FnLsOptions{F: f}
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the functions",
		Args:    exactArgs(),
		RunE:    withJSON(&o.JSON, nil, func(ctx context.Context) error { return runFnLs(ctx, o) }),
	}
}

func runFnLs(ctx context.Context, o *FnLsOptions) error {
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	all := []frontend.FunctionView{}
	for cursor := ""; ; {
		page, next, err := c.Functions(ctx, cursor, 0)
		if err != nil {
			return err
		}
		for _, name := range slices.Sorted(maps.Keys(page)) {
			st := page[name]
			st.Name = name
			all = append(all, st)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if o.JSON {
		return printJSON(o.F.IO.Out, all)
	}
	tw := tabwriter.NewWriter(o.F.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tTIMEOUT\tMEMORY\tUPDATED")
	for _, st := range all {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", st.Name, st.Version, msDuration(st.TimeoutMS), memory(st.MemoryMB), st.Updated.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// FnGetOptions are faas fn get's.
type FnGetOptions struct {
	F    *Factory
	Name string
	JSON bool
}

func newFnGetCmd(f *Factory) *cobra.Command {
	o := &FnGetOptions{F: f}
	return &cobra.Command{
		Use:   "get <name>",
		Short: "Show a function's settings and source",
		Args:  exactArgs("name"),
		RunE:  withJSON(&o.JSON, func(args []string) { o.Name = args[0] }, func(ctx context.Context) error { return runFnGet(ctx, o) }),
	}
}

func runFnGet(ctx context.Context, o *FnGetOptions) error {
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	fn, err := c.Function(ctx, o.Name)
	if err != nil {
		return err
	}
	if o.JSON {
		return printJSON(o.F.IO.Out, fn)
	}
	tw := tabwriter.NewWriter(o.F.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", fn.Name)
	if fn.Version != 0 {
		fmt.Fprintf(tw, "version:\t%d\n", fn.Version)
		fmt.Fprintf(tw, "timeout:\t%s\n", msDuration(fn.TimeoutMS))
		fmt.Fprintf(tw, "memory:\t%s\n", memory(fn.MemoryMB))
		fmt.Fprintf(tw, "concurrency:\t%s\n", concurrencyLimit(fn.Concurrency))
		fmt.Fprintf(tw, "updated:\t%s\n", fn.Updated.Local().Format(time.DateTime))
	}
	if len(fn.Env) > 0 {
		fmt.Fprintf(tw, "env:\t%s\n", strings.Join(fn.Env, ", "))
	}
	if len(fn.Secrets) > 0 {
		fmt.Fprintf(tw, "secrets:\t%s\n", strings.Join(fn.Secrets, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(o.F.IO.Out, "\n%s\n", strings.TrimRight(fn.Source, "\n"))
	return nil
}

// FnRmOptions are faas fn rm's.
type FnRmOptions struct {
	F    *Factory
	Name string
}

func newFnRmCmd(f *Factory) *cobra.Command {
	o := &FnRmOptions{F: f}
	return &cobra.Command{
		Use:   "rm <name>",
		Short: "Remove a function; its queued jobs fail with function_deleted",
		Args:  exactArgs("name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			return runFnRm(cmd.Context(), o)
		},
	}
}

func runFnRm(ctx context.Context, o *FnRmOptions) error {
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	if err := c.DeleteFunction(ctx, o.Name); err != nil {
		return err
	}
	fmt.Fprintf(o.F.IO.Out, "removed %s\n", o.Name)
	return nil
}

// msDuration shows milliseconds as a duration; 0 is the platform's default.
func msDuration(ms float64) string {
	if ms == 0 {
		return "default"
	}
	return time.Duration(ms * float64(time.Millisecond)).String()
}

// memory shows a memory cap; 0 is the worker's default.
// concurrencyLimit shows a function's concurrency limit.
func concurrencyLimit(n int) string {
	if n == 0 {
		return "no limit"
	}
	return fmt.Sprintf("%d jobs at once", n)
}

func memory(mb int) string {
	if mb == 0 {
		return "default"
	}
	return fmt.Sprintf("%d MB", mb)
}
