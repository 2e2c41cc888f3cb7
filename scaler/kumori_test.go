package scaler

import (
	"go/build"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testUser       = "alice@example.org"
	testPassword   = "s3cr3t-P4ss word"
	testDeployment = "example.org/faas"
)

// kumorictlScript stands in for kumorictl. It records every call (argv,
// stdin of login, whether the password leaked into its environment) in
// RECORD, keeps a session in STATE like the real one, fails on demand
// (STATE/expire: an expired session, once; STATE/fail: any other error),
// and on update checks the module with cue and records the worker count
// in the deployment's manifest. cue v0.17 cannot follow the _params
// hand-off that builds the deployment field kumorictl reads (see
// deploy/check.sh), so it vets with -c=false, exports #Manifest, which
// must be concrete, and reads the count from there. Its login echoes the
// password, so that the scaler's redaction is tested too.
const kumorictlScript = `#!/bin/sh
rec='RECORD'
state='STATE'
{ printf 'argv:'; for a in "$@"; do printf ' %s' "$a"; done; printf '\n'; } >> "$rec"
if env | grep -q '^KUMORI_PASSWORD='; then echo 'env: KUMORI_PASSWORD' >> "$rec"; fi
case "$1" in
login)
	IFS= read -r pw || true
	printf 'stdin: %s\n' "$pw" >> "$rec"
	echo "Welcome $2, password $pw accepted"
	touch "$state/session"
	;;
update)
	if [ "$2" != deployment ] || [ "$4" != --deployment ] || [ $# -ne 5 ]; then
		echo 'usage: kumorictl update deployment <name> --deployment <dir>' >&2; exit 2
	fi
	if [ -e "$state/expire" ]; then
		rm -f "$state/expire" "$state/session"; echo 'Error: session expired, please log in' >&2; exit 1
	fi
	if [ ! -e "$state/session" ]; then echo 'Error: not logged in' >&2; exit 1; fi
	if [ -e "$state/fail" ]; then echo 'Error: deployment quota exceeded' >&2; exit 1; fi
	cd "$5" || exit 1
	'CUE' vet -c=false ./... >&2 && 'CUE' export -e '#Manifest' . >/dev/null || exit 1
	n=$('CUE' export -e '#Manifest.description.hsize.worker.$_instances' .) || exit 1
	printf 'workers: %s\n' "$n" >> "$rec"
	echo "Deployment $3 updated"
	;;
*)
	echo "unknown command $1" >&2; exit 2
	;;
esac
`

// fakeKumori is a stand-in kumorictl and a copy of a deployment module.
type fakeKumori struct {
	bin    string // the directory holding kumorictl
	record string
	state  string
	deploy string // the deployment package directory
}

// testModule is a small module laid out like the real one under deploy/.
var testModule = []string{"testdata/kumori/cue.mod", "testdata/kumori/deploy"}

// newFakeKumori sets up kumorictl and a module made of copies of the
// module directories (cue.mod and deploy).
func newFakeKumori(t testing.TB, module []string) *fakeKumori {
	t.Helper()
	root := t.TempDir()
	f := &fakeKumori{
		bin:    filepath.Join(root, "bin"),
		record: filepath.Join(root, "record"),
		state:  filepath.Join(root, "state"),
		deploy: filepath.Join(root, "module", "deploy"),
	}
	for _, dir := range module {
		require.NoError(t, os.CopyFS(filepath.Join(root, "module", filepath.Base(dir)), os.DirFS(dir)))
	}
	require.NoError(t, os.MkdirAll(f.bin, 0o755))
	require.NoError(t, os.MkdirAll(f.state, 0o755))
	script := strings.NewReplacer("RECORD", f.record, "STATE", f.state, "CUE", cueBinary(t)).Replace(kumorictlScript)
	require.NoError(t, os.WriteFile(filepath.Join(f.bin, "kumorictl"), []byte(script), 0o755))
	return f
}

// config is a KumoriConfig for the fake, running its kumorictl by path.
func (f *fakeKumori) config() KumoriConfig {
	return KumoriConfig{
		Deployment:  testDeployment,
		Dir:         f.deploy,
		Credentials: Credentials{User: testUser, Password: testPassword},
		Command:     filepath.Join(f.bin, "kumorictl"),
	}
}

// calls is the record of kumorictl calls, one line each.
func (f *fakeKumori) calls(t testing.TB) []string {
	t.Helper()
	data, err := os.ReadFile(f.record)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func (f *fakeKumori) touch(t testing.TB, name string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(f.state, name), nil, 0o644))
}

// numWorkers is the content of the num_workers file.
func (f *fakeKumori) numWorkers(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.deploy, NumWorkersFile))
	require.NoError(t, err)
	return string(data)
}

// cueBinary finds cue: $FAAS_CUE, $CUE (the Makefile's), PATH, then where
// go install puts it. Without it the kumori tests cannot check the CUE
// they produce, so they fail rather than skip.
func cueBinary(t testing.TB) string {
	t.Helper()
	for _, env := range []string{"FAAS_CUE", "CUE"} {
		if p := os.Getenv(env); p != "" {
			return p
		}
	}
	if p, err := exec.LookPath("cue"); err == nil {
		return p
	}
	p := filepath.Join(build.Default.GOPATH, "bin", "cue")
	if _, err := os.Stat(p); err != nil {
		t.Fatal("cue not found ($FAAS_CUE, $CUE, PATH, GOPATH/bin); install it with go install cuelang.org/go/cmd/cue@v0.17.1")
	}
	return p
}

// logTo is a logger writing to the test and to w.
func logTo(t testing.TB, w *limitedBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), w), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestKumoriScale finds kumorictl on PATH and sets the environment, so it
// cannot be parallel.
func TestKumoriScale(t *testing.T) {
	f := newFakeKumori(t, testModule)
	t.Setenv("PATH", f.bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("KUMORI_PASSWORD", testPassword) // must not reach kumorictl
	cfg := f.config()
	cfg.Command = ""
	var log limitedBuffer
	k, err := NewKumori(cfg, logTo(t, &log))
	require.NoError(t, err)
	ctx := t.Context()

	n, err := k.Workers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Empty(t, f.calls(t), "nothing runs before the first Scale")

	require.NoError(t, k.Scale(ctx, 5))
	n, err = k.Workers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	assert.Equal(t, "package num_workers\n\n#NUM_WORKERS: 5\n", f.numWorkers(t))

	require.NoError(t, k.Scale(ctx, 2))
	assert.Equal(t, []string{
		"argv: login " + testUser,
		"stdin: " + testPassword,
		"argv: update deployment " + testDeployment + " --deployment " + f.deploy,
		"workers: 5",
		"argv: update deployment " + testDeployment + " --deployment " + f.deploy,
		"workers: 2",
	}, f.calls(t), "one login, then updates that cue vet accepts with the new count")
	for _, call := range f.calls(t) {
		if strings.HasPrefix(call, "argv:") {
			assert.NotContains(t, call, "s3cr3t", "password on a command line")
		}
	}
	assert.NotContains(t, log.String(), "s3cr3t", "password in the log")
	assert.Contains(t, log.String(), "password "+redacted+" accepted", "kumorictl output is logged, redacted")

	entries, err := os.ReadDir(filepath.Dir(filepath.Join(f.deploy, NumWorkersFile)))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files left")
	assert.NoError(t, k.Close())
}

// TestKumoriScalesRealModule rewrites a copy of the repository's own
// deployment module, which must still vet with the new count.
func TestKumoriScalesRealModule(t *testing.T) {
	t.Parallel()
	f := newFakeKumori(t, []string{"../cue.mod", "../deploy"})
	k, err := NewKumori(f.config(), testLogger(t))
	require.NoError(t, err)
	require.NoError(t, k.Scale(t.Context(), 5))
	calls := f.calls(t)
	assert.Equal(t, "workers: 5", calls[len(calls)-1])
	assert.Equal(t, "package num_workers\n\n#NUM_WORKERS: 5\n", f.numWorkers(t))
}

func TestKumoriLogsInAgainWhenSessionExpires(t *testing.T) {
	t.Parallel()
	f := newFakeKumori(t, testModule)
	k, err := NewKumori(f.config(), testLogger(t))
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, k.Scale(ctx, 4))
	f.touch(t, "expire")
	require.NoError(t, k.Scale(ctx, 6))

	update := "argv: update deployment " + testDeployment + " --deployment " + f.deploy
	login := "argv: login " + testUser
	assert.Equal(t, []string{
		login, "stdin: " + testPassword, update, "workers: 4",
		update, // expired
		login, "stdin: " + testPassword, update, "workers: 6",
	}, f.calls(t))
	n, err := k.Workers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 6, n)
}

func TestKumoriKeepsCountWhenUpdateFails(t *testing.T) {
	t.Parallel()
	f := newFakeKumori(t, testModule)
	var log limitedBuffer
	k, err := NewKumori(f.config(), logTo(t, &log))
	require.NoError(t, err)
	ctx := t.Context()
	before := f.numWorkers(t)

	f.touch(t, "fail")
	err = k.Scale(ctx, 7)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "deployment quota exceeded")
	assert.Equal(t, before, f.numWorkers(t), "the file still says what the cluster runs")
	n, err := k.Workers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Len(t, f.calls(t), 3, "a failure that is not about the session does not log in again")

	require.NoError(t, os.Remove(filepath.Join(f.state, "fail")))
	require.NoError(t, k.Scale(ctx, 7))
	assert.Equal(t, "workers: 7", f.calls(t)[len(f.calls(t))-1])
	assert.NotContains(t, log.String(), "s3cr3t")
}

// TestKumoriUpdateChecksCUE shows that the stand-in's cue vet really
// judges the rewritten module: a count the deployment forbids fails.
func TestKumoriUpdateChecksCUE(t *testing.T) {
	t.Parallel()
	f := newFakeKumori(t, testModule)
	dep := filepath.Join(f.deploy, "deployment.cue")
	src, err := os.ReadFile(dep)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dep, []byte(strings.Replace(string(src), ">=0", ">=0 & <=4", 1)), 0o644))
	k, err := NewKumori(f.config(), testLogger(t))
	require.NoError(t, err)

	require.NoError(t, k.Scale(t.Context(), 4))
	err = k.Scale(t.Context(), 5)
	require.Error(t, err)
	assert.Contains(t, f.numWorkers(t), "#NUM_WORKERS: 4\n")
}

func TestNewKumoriChecksModule(t *testing.T) {
	t.Parallel()
	f := newFakeKumori(t, testModule)
	cfg := f.config()
	file := filepath.Join(f.deploy, NumWorkersFile)

	require.NoError(t, os.WriteFile(file, []byte("package num_workers\n\n#WORKERS: 3\n"), 0o644))
	_, err := NewKumori(cfg, nil)
	assert.ErrorContains(t, err, "#NUM_WORKERS")

	require.NoError(t, os.Remove(file))
	_, err = NewKumori(cfg, nil)
	assert.ErrorIs(t, err, os.ErrNotExist)

	cfg.Credentials = Credentials{}
	_, err = NewKumori(cfg, nil)
	assert.Error(t, err)
}

func TestLoadCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	tests := []struct {
		name     string
		path     string
		user     string
		password Secret
		want     Credentials
		err      string
	}{
		{name: "file", path: write("ok", testUser+"\n"+testPassword+"\n"), want: Credentials{testUser, testPassword}},
		{name: "no final newline", path: write("nonl", testUser+"\n"+testPassword), want: Credentials{testUser, testPassword}},
		{name: "windows line ends", path: write("crlf", testUser+"\r\n"+testPassword+"\r\n"), want: Credentials{testUser, testPassword}},
		{name: "env wins", path: write("ignored", "bob\npw\n"), user: "carol", password: "pw2", want: Credentials{"carol", "pw2"}},
		{name: "env without file", path: filepath.Join(dir, "none"), user: "carol", password: "pw2", want: Credentials{"carol", "pw2"}},
		{name: "missing file", path: filepath.Join(dir, "none"), err: "KUMORI_CREDENTIALS"},
		{name: "one line", path: write("one", testUser+"\n"), err: "password"},
		{name: "only user", path: write("only", testUser), err: "want a user line and a password line"},
		{name: "empty user", path: write("nouser", "\n"+testPassword+"\n"), err: "empty"},
		{name: "blank in user", path: write("blank", "al ice\n"+testPassword+"\n"), err: "blanks"},
		{name: "user without password", path: write("ok2", "a\nb\n"), user: "carol", err: "both"},
		{name: "password without user", path: write("ok3", "a\nb\n"), password: "pw", err: "both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := LoadCredentials(tt.path, tt.user, tt.password)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				assert.NotContains(t, err.Error(), "s3cr3t")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
