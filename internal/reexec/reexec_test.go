package reexec

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	Serve(map[string]func() int{
		"hello": func() int { os.Stdout.WriteString("hello from the child"); return 0 },
		"seven": func() int { return 7 },
	})
	os.Exit(m.Run())
}

// TestServe starts this test binary in each mode, and in one it lacks.
func TestServe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode   string
		status int
		out    string
	}{
		{"hello", 0, "hello from the child"},
		{"seven", 7, ""},
		{"nope", 2, `FAAS_TEST_CHILD="nope": this test binary has no such mode` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), Env(tt.mode))
			cmd.WaitDelay = 10 * time.Second
			out, err := cmd.CombinedOutput()
			if tt.status == 0 {
				require.NoError(t, err)
			} else {
				var exit *exec.ExitError
				require.ErrorAs(t, err, &exit)
				require.Equal(t, tt.status, exit.ExitCode())
			}
			require.Equal(t, tt.out, string(out))
		})
	}
}
