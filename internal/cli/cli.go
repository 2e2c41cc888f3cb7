// Package cli is the faas command: the platform's roles (one process each,
// configured from the environment) and the user's commands, which speak
// the REST API through frontend/client. Each user command is an Options
// struct and a run function, so it is tested without a process; Main maps
// its outcome to the documented exit codes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"faas/frontend/client"
	"faas/proxies/faas"
)

// The exit codes, documented in README's CLI section.
const (
	ExitOK = 0
	// ExitFailed: the function failed (or a role stopped with an error).
	ExitFailed = 1
	// ExitUsage: the command line is wrong.
	ExitUsage = 2
	// ExitRefused: the platform was unavailable or refused the request, or
	// the command could not be carried out.
	ExitRefused = 3
)

// Factory is what every command needs from its surroundings; tests give
// their own.
type Factory struct {
	IO *IOStreams
	// Getenv reads the environment (FAAS_URL, FAAS_USER, FAAS_TOKEN,
	// XDG_CONFIG_HOME, HOME).
	Getenv func(string) string
	// HTTP sends the API's requests; nil means http.DefaultClient.
	HTTP *http.Client
}

// Main runs the faas command with args (without the program name) and
// returns its exit code.
func Main(ctx context.Context, args []string, f *Factory, roles []Role) int {
	root := newRoot(f, roles)
	root.SetArgs(args)
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code, line := describe(err)
	fmt.Fprintln(f.IO.Err, line)
	return code
}

// describe turns a command's error into its exit code and one line.
func describe(err error) (int, string) {
	var ue *usageError
	var fe *faas.Error
	var re *roleError
	switch {
	case errors.As(err, &ue):
		return ExitUsage, "error: usage: " + oneLine(ue.Error())
	case errors.As(err, &re):
		return ExitFailed, "faas: " + oneLine(re.err.Error())
	case client.JobFailed(err):
		return ExitFailed, "error: " + oneLine(err.Error())
	case errors.As(err, &fe):
		return ExitRefused, "error: " + oneLine(err.Error())
	case strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"):
		// cobra's own complaints about the command line.
		return ExitUsage, "error: usage: " + oneLine(err.Error())
	default:
		return ExitRefused, "error: " + oneLine(err.Error())
	}
}

// oneLine keeps a message on the one line scripts grep.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// usageError is a wrong command line: exit 2.
type usageError struct{ error }

func (e *usageError) Unwrap() error { return e.error }

// usagef returns a usage error.
func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// roleError is a role that stopped with an error: exit 1, as before the CLI.
type roleError struct{ err error }

func (e *roleError) Error() string { return e.err.Error() }

func newRoot(f *Factory, roles []Role) *cobra.Command {
	root := &cobra.Command{
		Use:   "faas",
		Short: "Functions as a service: run the platform, or use it",
		Long: `faas is the whole platform in one binary and its command-line client.

The roles (dbmanager, jqmanager, frontend, worker, scaler, up) run the
platform, one process each, configured from the environment: faas <role>
--help lists the variables. The other commands use a running platform
through its REST API with the credentials stored by faas register or faas
login.

Exit codes: 0 ok, 1 the function failed, 2 usage error, 3 the platform was
unavailable or refused.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.PersistentFlags().StringP("output", "o", "table", "output format: table or json")
	root.AddGroup(&cobra.Group{ID: "use", Title: "Using the platform:"}, &cobra.Group{ID: "run", Title: "Running the platform:"})
	for _, c := range []*cobra.Command{
		newRegisterCmd(f), newLoginCmd(f), newTokenCmd(f), newFnCmd(f), newRunCmd(f), newJobCmd(f), newTopicCmd(f), newUsageCmd(f),
	} {
		c.GroupID = "use"
		root.AddCommand(c)
	}
	for _, r := range roles {
		root.AddCommand(newRoleCmd(f, r))
	}
	root.AddCommand(newVersionCmd(f))
	return root
}

// withJSON is the RunE of a command with an Options struct: it sets
// *asJSON from -o (refusing formats that do not exist), lets bind copy the
// positional arguments into the options, and calls run.
func withJSON(asJSON *bool, bind func(args []string), run func(context.Context) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		switch v, _ := cmd.Flags().GetString("output"); v {
		case "table", "":
			*asJSON = false
		case "json":
			*asJSON = true
		default:
			return usagef("invalid output %q: want table or json", v)
		}
		if bind != nil {
			bind(args)
		}
		return run(cmd.Context())
	}
}

// noun is a command that only groups others (fn, job, token): alone it
// shows its help; with an unknown subcommand it is a usage error, where
// cobra would show the help and exit 0.
func noun(use, short string, verbs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(verbs...)
	return cmd
}

// exactArgs is cobra.ExactArgs with a usage error and the names of the
// arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef("%s takes %d argument(s) (%s), got %d", cmd.CommandPath(), len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// minArgs is cobra.MinimumNArgs with a usage error.
func minArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usagef("%s needs %s", cmd.CommandPath(), strings.Join(names, " "))
		}
		return nil
	}
}

// System is the Factory of the real process.
func System() *Factory {
	return &Factory{IO: SystemIO(), Getenv: os.Getenv}
}

// printRows prints a listing: items as JSON (an empty list, never null)
// for scripts, else a table of header and one row per item.
func printRows[T any](w io.Writer, asJSON bool, items []T, header string, row func(T) string) error {
	if items == nil {
		items = []T{}
	}
	if asJSON {
		return printJSON(w, items)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	return tw.Flush()
}
