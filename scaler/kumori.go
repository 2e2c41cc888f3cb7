package scaler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// NumWorkersFile is where, under the deployment directory, the worker
// count lives: a CUE package of its own that the deployment imports, so
// the scaler rewrites a file that holds nothing else.
const NumWorkersFile = "num_workers/num_workers.cue"

// kumoriTimeout bounds one kumorictl run; an update waits for the cluster.
const kumoriTimeout = 5 * time.Minute

// maxOutput bounds the kumorictl output kept for the log.
const maxOutput = 16 << 10

// numWorkersRE finds the count in the num_workers file.
var numWorkersRE = regexp.MustCompile(`(?m)^\s*#NUM_WORKERS:\s*(\d+)\s*$`)

// sessionRE recognises kumorictl failing for want of a valid session,
// after which logging in again may help.
var sessionRE = regexp.MustCompile(`(?i)log ?in|expired|unauthori[sz]ed|unauthenticated|forbidden|\b401\b|token`)

// Credentials are a Kumori account's.
type Credentials struct {
	User     string
	Password Secret
}

// LoadCredentials returns user and password if both are set, else reads
// them from the file at path: the user on the first line, the password on
// the second. The error never holds the file's content.
func LoadCredentials(path, user string, password Secret) (Credentials, error) {
	switch {
	case user != "" && password != "":
		return Credentials{User: user, Password: password}, nil
	case user != "" || password != "":
		return Credentials{}, errors.New("kumori credentials: set both KUMORI_USER and KUMORI_PASSWORD, or neither to use the KUMORI_CREDENTIALS file")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("kumori credentials (set KUMORI_CREDENTIALS to a file with a user line and a password line, or KUMORI_USER and KUMORI_PASSWORD): %w", err)
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 2 {
		return Credentials{}, fmt.Errorf("kumori credentials file %s: want a user line and a password line", path)
	}
	c := Credentials{
		User:     strings.TrimSpace(lines[0]),
		Password: Secret(strings.TrimRight(lines[1], "\r")),
	}
	if c.User == "" || c.Password == "" {
		return Credentials{}, fmt.Errorf("kumori credentials file %s: the user (line 1) or the password (line 2) is empty", path)
	}
	if strings.ContainsAny(c.User, " \t") {
		return Credentials{}, fmt.Errorf("kumori credentials file %s: the user (line 1) contains blanks", path)
	}
	return c, nil
}

// KumoriConfig says which deployment the kumori backend scales.
type KumoriConfig struct {
	// Deployment is the deployment's name for kumorictl (domain/name).
	Deployment string
	// Dir is the CUE deployment package; NumWorkersFile is below it.
	Dir         string
	Credentials Credentials
	// Command is the kumorictl binary; "kumorictl" on PATH if empty.
	Command string
}

// Kumori is the backend that scales the worker role of a Kumori
// deployment: it rewrites the worker count in the deployment module and
// runs kumorictl to update the deployment. The password goes to kumorictl
// on its standard input only, never on a command line (which `ps` shows)
// nor into a log.
type Kumori struct {
	cfg  KumoriConfig
	file string
	log  *slog.Logger

	mu       sync.Mutex // one kumorictl conversation at a time
	loggedIn bool
}

var _ Backend = (*Kumori)(nil)

// NewKumori returns a kumori backend. It checks that the worker-count file
// is there and readable, so a wrong directory fails at start.
func NewKumori(cfg KumoriConfig, log *slog.Logger) (*Kumori, error) {
	if cfg.Deployment == "" || cfg.Dir == "" {
		return nil, errors.New("kumori backend needs a deployment name and directory")
	}
	if cfg.Credentials.User == "" || cfg.Credentials.Password == "" {
		return nil, errors.New("kumori backend needs credentials")
	}
	if cfg.Command == "" {
		cfg.Command = "kumorictl"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &Kumori{
		cfg:  cfg,
		file: filepath.Join(cfg.Dir, NumWorkersFile),
		log:  log.With("backend", BackendKumori, "deployment", cfg.Deployment),
	}
	if _, err := k.read(); err != nil {
		return nil, err
	}
	return k, nil
}

// Workers is the count in the deployment module, which Scale keeps equal
// to what the cluster was last told.
func (k *Kumori) Workers(context.Context) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.read()
}

// Scale writes n into the deployment module and updates the deployment.
// If the update fails the file is put back, so that it keeps saying what
// the cluster runs and the next tick tries again.
func (k *Kumori) Scale(ctx context.Context, n int) error {
	if n < 0 {
		return fmt.Errorf("scale to %d workers: negative count", n)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old, err := os.ReadFile(k.file)
	if err != nil {
		return fmt.Errorf("read worker count: %w", err)
	}
	if err := writeFileAtomic(k.file, numWorkersCUE(n)); err != nil {
		return err
	}
	if err := k.update(ctx); err != nil {
		if rerr := writeFileAtomic(k.file, old); rerr != nil {
			err = errors.Join(err, fmt.Errorf("restore worker count: %w", rerr))
		}
		return err
	}
	return nil
}

// Close does nothing: the deployment's workers run on without the scaler.
func (k *Kumori) Close() error { return nil }

// update runs kumorictl update, logging in first when there is no session
// yet, and once more when the update fails for want of one.
func (k *Kumori) update(ctx context.Context) error {
	if !k.loggedIn {
		if err := k.login(ctx); err != nil {
			return err
		}
	}
	args := []string{"update", "deployment", k.cfg.Deployment, "--deployment", k.cfg.Dir}
	out, err := k.run(ctx, nil, args...)
	if err != nil && sessionRE.MatchString(out) {
		k.log.Info("kumorictl update failed, logging in again")
		k.loggedIn = false
		if lerr := k.login(ctx); lerr != nil {
			return errors.Join(err, lerr)
		}
		_, err = k.run(ctx, nil, args...)
	}
	return err
}

// login runs kumorictl login with the password on standard input.
func (k *Kumori) login(ctx context.Context) error {
	stdin := strings.NewReader(string(k.cfg.Credentials.Password) + "\n")
	if _, err := k.run(ctx, stdin, "login", k.cfg.Credentials.User); err != nil {
		return err
	}
	k.loggedIn = true
	return nil
}

// run runs kumorictl and logs its output with the password taken out. The
// output is returned (redacted) for the caller to inspect.
func (k *Kumori) run(ctx context.Context, stdin *strings.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, kumoriTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.cfg.Command, args...)
	// The password must not sit in kumorictl's environment either.
	cmd.Env = withoutEnv(os.Environ(), "KUMORI_PASSWORD")
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	text := k.redact(out.String())
	log := k.log.With("cmd", "kumorictl "+args[0], "took", time.Since(start).Round(time.Millisecond))
	if err != nil {
		log.Warn("kumorictl failed", "err", err, "output", text)
		return text, fmt.Errorf("kumorictl %s: %w: %s", args[0], err, lastLine(text))
	}
	log.Info("kumorictl done", "output", text)
	return text, nil
}

func (k *Kumori) redact(s string) string {
	if p := string(k.cfg.Credentials.Password); p != "" {
		s = strings.ReplaceAll(s, p, redacted)
	}
	return strings.TrimSpace(s)
}

// read parses the worker count out of the num_workers file.
func (k *Kumori) read() (int, error) {
	data, err := os.ReadFile(k.file)
	if err != nil {
		return 0, fmt.Errorf("read worker count: %w", err)
	}
	m := numWorkersRE.FindSubmatch(data)
	if m == nil {
		return 0, fmt.Errorf("read worker count: %s has no #NUM_WORKERS: <count> line", k.file)
	}
	n, err := strconv.Atoi(string(m[1]))
	if err != nil {
		return 0, fmt.Errorf("read worker count from %s: %w", k.file, err)
	}
	return n, nil
}

// numWorkersCUE is the num_workers package holding n.
func numWorkersCUE(n int) []byte {
	return fmt.Appendf(nil, "package num_workers\n\n#NUM_WORKERS: %d\n", n)
}

// writeFileAtomic replaces path with data so that a reader (kumorictl, or
// the scaler after a crash) sees the old file or the new one, never half
// of one. The temporary name does not end in .cue, so a leftover is never
// taken for part of the package.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// withoutEnv drops the named variables from env.
func withoutEnv(env []string, names ...string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}

// lastLine is the last non-empty line of s, which is where command-line
// tools put the reason they failed.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// limitedBuffer keeps the first maxOutput bytes written to it and drops
// the rest, so a chatty command cannot fill the scaler's memory.
type limitedBuffer struct {
	mu  sync.Mutex // stdout and stderr are copied concurrently
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxOutput - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
