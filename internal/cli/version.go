package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the source revision it was built from",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(f.IO.Out, Version())
			return nil
		},
	}
}

// Version is the module version and the VCS revision the binary was built
// from, as the Go toolchain recorded them.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "faas (no build information)"
	}
	v := "faas " + bi.Main.Version
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		v += " " + rev
		if settings["vcs.modified"] == "true" {
			v += " (modified)"
		}
	}
	if t := settings["vcs.time"]; t != "" {
		v += " " + t
	}
	return v + " " + bi.GoVersion
}
