package secretfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"faas/proxies/secretfile"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(t testing.TB, name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	token := write(t, "token", "s3cr3t-t0ken-value\n")
	blank := write(t, "blank", " \n")
	for _, tc := range []struct {
		name, value, file string
		want, err         string
	}{
		{name: "neither", want: ""},
		{name: "inline", value: "inline-value", want: "inline-value"},
		{name: "file, newline trimmed", file: token, want: "s3cr3t-t0ken-value"},
		{name: "both", value: "inline-value", file: token, err: "both FAAS_X and FAAS_X_FILE are set"},
		{name: "missing file", file: filepath.Join(dir, "nope"), err: "FAAS_X_FILE: open"},
		{name: "empty file", file: blank, err: "FAAS_X_FILE " + blank + " is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := secretfile.Resolve("FAAS_X", tc.value, tc.file)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.NotContains(t, err.Error(), "s3cr3t", "an error must not show the secret")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
