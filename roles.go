package main

import (
	"context"
	"log/slog"
	"os"
	"slices"

	"faas/internal/cli"
	"faas/internal/platform"
)

// roleList is the roles the binary runs, for the CLI: the platform's roles
// (internal/platform, where each reads its configuration from the
// environment, dials the managers it talks to and runs until ctx ends),
// and the two tools that start or prepare them. This is the one place the
// CLI meets the wiring.
func roleList() []cli.Role {
	var roles []cli.Role
	for _, r := range platform.Roles {
		roles = append(roles, cli.Role{Name: r.Name, Short: r.Short, Config: r.Config, Hidden: r.Hidden,
			Run: func(ctx context.Context, log *slog.Logger, _ []string) error {
				return platform.RunRole(ctx, r.Name, log)
			}})
	}
	up := slices.IndexFunc(platform.Roles, func(r platform.Role) bool { return r.Name == "up" })
	return append(roles,
		cli.Role{Name: "bench", Short: "Start the platform (or use one with -url) and measure it against the performance targets (README, Performance)", Config: platform.Roles[up].Config, Flags: true, Run: bench},
		cli.Role{Name: "keys", Short: "Write a bus keypair for every role: faas keys [--dir D]", Flags: true, Run: func(_ context.Context, _ *slog.Logger, args []string) error {
			return platform.Keys(args, os.Stdout)
		}},
	)
}
