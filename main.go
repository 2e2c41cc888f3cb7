// Command faas is the whole platform in one binary and its command-line
// client: each role is a subcommand, `faas up` runs them all on one
// machine, and the other commands use a running platform (internal/cli).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"faas/internal/cli"
)

func main() { os.Exit(faasMain(os.Args[1:])) }

// faasMain runs the faas command until it ends or a signal stops it, and
// returns its exit code. The tests' re-executed binary runs it too.
func faasMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return cli.Main(ctx, args, cli.System(), roleList())
}
