// Command faas is the whole platform in one binary: each role is a
// subcommand, and `faas up` runs them all on one machine.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kelseyhightower/envconfig"

	"faas/proxies/tracing"
)

const usage = `usage: faas <command>

Roles, one process each, configured from the environment:
  frontend    the REST API
  dbmanager   the only component that touches the database
  jqmanager   the job queue
  worker      runs jobs in JavaScript sandboxes
  scaler      changes the number of workers with the backlog

  up          the whole platform on this machine (embedded database,
              local worker processes)
  bench       start the platform and measure throughput and latency
  keys        write a bus keypair for every role: faas keys [--dir D]
`

// logConfig is shared by every role.
type logConfig struct {
	Level  slog.Level `envconfig:"FAAS_LOG_LEVEL" default:"info" desc:"log level: debug, info, warn or error"`
	Format string     `envconfig:"FAAS_LOG_FORMAT" default:"text" desc:"log format: text or json"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "faas:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Print(usage)
		return nil
	}
	var lc logConfig
	if err := envconfig.Process("", &lc); err != nil {
		return err
	}
	log, err := newLogger(lc)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	role, rest := args[0], args[1:]
	if role != "up" { // up labels each of the roles it runs
		log = log.With("component", role)
	}
	switch role {
	case "bench":
		return bench(ctx, rest, log)
	case "keys":
		return keys(rest, os.Stdout)
	}
	if len(rest) > 0 {
		return fmt.Errorf("%s takes no arguments; it is configured from the environment", role)
	}
	start, ok := roles[role]
	if !ok {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown command %q", role)
	}
	if role != "sandbox" { // a worker's child: the worker traces its runs
		flush, err := tracing.Setup(ctx, "faas-"+role)
		if err != nil {
			return err
		}
		defer flushTraces(flush, log)
	}
	err = start(ctx, log)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// flushTraces exports the spans still buffered at shutdown, waiting a
// little for a slow collector but not forever.
func flushTraces(flush func(context.Context) error, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := flush(ctx); err != nil {
		log.Warn("flush traces", "err", err)
	}
}

func newLogger(c logConfig) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: c.Level}
	switch strings.ToLower(c.Format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("FAAS_LOG_FORMAT=%q: want text or json", c.Format)
	}
}
