package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/kelseyhightower/envconfig"
	"github.com/spf13/cobra"
)

// Role is a part of the platform the binary runs: a role proper, one
// process each (dbmanager, jqmanager, frontend, worker, scaler), or a tool
// that starts or prepares them (up, bench, keys). The wiring that builds
// them lives outside this package and hands them over as Roles.
type Role struct {
	Name  string
	Short string
	// Hidden keeps the role out of the help (the worker's sandbox child).
	Hidden bool
	// Config holds pointers to the config structs the role reads from the
	// environment; --help lists their variables from the envconfig tags.
	Config []any
	// Flags is true for a role that parses its own flags (bench, keys);
	// the others take no arguments.
	Flags bool
	// Run runs the role until ctx ends.
	Run func(ctx context.Context, log *slog.Logger, args []string) error
}

// LogConfig is how every role logs.
type LogConfig struct {
	Level  slog.Level `envconfig:"FAAS_LOG_LEVEL" default:"info" desc:"log level: debug, info, warn or error"`
	Format string     `envconfig:"FAAS_LOG_FORMAT" default:"text" desc:"log format: text or json"`
}

// NewLogger is the logger LogConfig asks for, writing to w.
func NewLogger(c LogConfig, w io.Writer) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: c.Level}
	switch strings.ToLower(c.Format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("FAAS_LOG_FORMAT=%q: want text or json", c.Format)
	}
}

func newRoleCmd(f *Factory, r Role) *cobra.Command {
	cmd := &cobra.Command{
		Use:     r.Name,
		Short:   r.Short,
		Hidden:  r.Hidden,
		GroupID: "run",
		// The roles are configured from the environment; bench and keys
		// parse their own flags, as they did before the CLI.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "--help" || a == "-help" }) {
				return roleHelp(cmd, f, r)
			}
			if !r.Flags && len(args) > 0 {
				return usagef("%s takes no arguments; it is configured from the environment (faas %s --help lists the variables)", r.Name, r.Name)
			}
			return runRole(cmd.Context(), f, r, args)
		},
	}
	if r.Hidden {
		cmd.GroupID = ""
	}
	return cmd
}

// runRole runs r with the process's logger.
func runRole(ctx context.Context, f *Factory, r Role, args []string) error {
	var lc LogConfig
	if err := envconfig.Process("", &lc); err != nil {
		return usagef("%v", err)
	}
	log, err := NewLogger(lc, f.IO.Err)
	if err != nil {
		return usagef("%v", err)
	}
	if r.Name != "up" { // up labels each of the roles it runs
		log = log.With("component", r.Name)
	}
	err = r.Run(ctx, log, args)
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return &roleError{err}
}

// roleHelp prints what the role does and every variable it reads.
func roleHelp(cmd *cobra.Command, f *Factory, r Role) error {
	out := f.IO.Out
	fmt.Fprintf(out, "%s\n\nUsage:\n  faas %s", r.Short, r.Name)
	if r.Flags {
		fmt.Fprint(out, " [flags]")
	}
	fmt.Fprint(out, "\n\nEnvironment:\n")
	if err := EnvHelp(out, append(slices.Clone(r.Config), &LogConfig{})...); err != nil {
		return err
	}
	if r.Flags {
		// The role's own flag set prints its flags on -h, to stderr.
		fmt.Fprint(f.IO.Err, "\nFlags:\n")
		return runRole(cmd.Context(), f, r, []string{"-h"})
	}
	return nil
}

// EnvHelp writes a table of the environment variables the config structs
// read, from their envconfig, default and desc tags, each variable once.
func EnvHelp(w io.Writer, configs ...any) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tMEANING")
	seen := map[string]bool{}
	for _, c := range configs {
		t := reflect.TypeOf(c)
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return fmt.Errorf("env help: %T is not a config struct", c)
		}
		for field := range t.Fields() {
			name := field.Tag.Get("envconfig")
			if name == "" || field.Tag.Get("ignored") == "true" || seen[name] {
				continue
			}
			seen[name] = true
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, field.Tag.Get("default"), field.Tag.Get("desc"))
		}
	}
	return tw.Flush()
}
