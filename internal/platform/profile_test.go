package platform

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCPUProfile checks the debugging aid: with FAAS_CPUPROFILE a role
// writes a profile named for it and its process when it stops, without
// it nothing, and a path it cannot write fails the start naming the
// variable. Not parallel: it sets the environment.
func TestCPUProfile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, env string
		want      string // the file expected, "" for none
		err       string
	}{
		{name: "unset"},
		{name: "set", env: filepath.Join(dir, "cpu"), want: filepath.Join(dir, fmt.Sprintf("cpu.worker.%d", os.Getpid()))},
		{name: "unwritable", env: filepath.Join(dir, "missing", "cpu"), err: "FAAS_CPUPROFILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("FAAS_CPUPROFILE", tc.env)
			stop, err := startProfile("worker", slog.New(slog.DiscardHandler))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			stop()
			files, err := filepath.Glob(filepath.Join(dir, "*"))
			require.NoError(t, err)
			if tc.want == "" {
				require.Empty(t, files)
				return
			}
			require.Equal(t, []string{tc.want}, files)
			b, err := os.ReadFile(tc.want)
			require.NoError(t, err)
			require.True(t, bytes.HasPrefix(b, []byte{0x1f, 0x8b}), "a profile is gzipped protobuf")
		})
	}
}
