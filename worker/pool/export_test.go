package pool

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"faas/worker/sandbox"
)

// ServeBroken is a sandbox that says hello and then dies of a bug in the
// middle of its first job, as a sandbox with a bug would.
func ServeBroken() {
	dec := decoder{r: os.Stdin}
	var set setup
	dec.next(&set, 4096)
	b, _ := newEncoder().frame(hello{})
	os.Stdout.Write(b)
	var req request
	dec.next(&req, maxRequest)
	panic("sandbox test: a bug")
}

// Pids lists the sandbox processes the pool has started and not yet
// reaped.
func (p *Pool) Pids() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for c := range p.live {
		pids = append(pids, c.cmd.Process.Pid)
	}
	return pids
}

// RefuseNamespaces makes the pool's forks fail as on a host that allows no
// new namespaces (EPERM, as without privilege).
func RefuseNamespaces(c *Config) {
	c.refuse = func(cmd *exec.Cmd) error {
		if cmd.SysProcAttr.Cloneflags != 0 {
			return &os.SyscallError{Syscall: "clone", Err: syscall.EPERM}
		}
		return nil
	}
}

// FenceReport is what a sandbox process finds when it tries what its
// fences should stop, from the inside (where /proc may be out of reach)
// and, for what the parent can see better, from the outside. An error
// field is the error of the attempt, "" if it succeeded.
type FenceReport struct {
	UID, GID   int
	Groups     []int
	Environ    []string
	NoNewPrivs int
	Seccomp    int // the mode: 2 is a filter
	InetSocket string
	UnixSocket string
	Exec       string
	Fork       string
	Unshare    string
	// Files are the errors opening files of the host, by name.
	Files map[string]string
	// WorkerEnviron is what reading /proc/<worker>/environ gave, or the
	// error.
	WorkerEnviron string

	// Seen from outside, in /proc/<pid>: its environment, its network
	// namespace, and its descriptors above stderr without close-on-exec,
	// which a program it started would inherit.
	ProcEnviron string
	NetNS       string
	Inheritable []string
}

func init() { probe = runProbe }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// HostFiles are files a sandbox should not reach, readable by all on any
// host.
var HostFiles = []string{"/etc/passwd", "/proc/self/status"}

// runProbe runs in the sandbox process. It tries exec only if args say
// so: where exec is allowed, it replaces the sandbox.
func runProbe(args []byte) []byte {
	var r FenceReport
	r.UID, r.GID = os.Getuid(), os.Getgid()
	r.Groups, _ = os.Getgroups()
	r.Environ = os.Environ()
	r.NoNewPrivs, _ = unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	r.Seccomp, _ = unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0)
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(os.Getppid()) + "/environ"); err != nil {
		r.WorkerEnviron = err.Error()
	} else {
		r.WorkerEnviron = string(b)
	}
	r.Files = make(map[string]string)
	for _, f := range HostFiles {
		_, err := os.ReadFile(f)
		r.Files[f] = errString(err)
	}
	if fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0); err != nil {
		r.InetSocket = err.Error()
	} else {
		syscall.Close(fd)
	}
	if fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0); err != nil {
		r.UnixSocket = err.Error()
	} else {
		syscall.Close(fd)
	}
	if string(args) == "exec" {
		r.Exec = errString(syscall.Exec("/bin/true", []string{"true"}, nil))
	}
	if pid, err := syscall.ForkExec("/bin/true", []string{"true"}, nil); err != nil {
		r.Fork = err.Error()
	} else {
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
	}
	r.Unshare = errString(syscall.Unshare(syscall.CLONE_NEWNS))
	b, _ := json.Marshal(r)
	return b
}

// inspect fills in what the parent sees of the sandbox pid.
func (r *FenceReport) inspect(pid int) {
	proc := "/proc/" + strconv.Itoa(pid)
	if b, err := os.ReadFile(proc + "/environ"); err != nil {
		r.ProcEnviron = err.Error()
	} else {
		r.ProcEnviron = string(b)
	}
	r.NetNS, _ = os.Readlink(proc + "/ns/net")
	fds, _ := os.ReadDir(proc + "/fd")
	for _, e := range fds {
		info, err := os.ReadFile(proc + "/fdinfo/" + e.Name())
		if fd, _ := strconv.Atoi(e.Name()); err != nil || fd <= 2 {
			continue
		}
		for _, line := range bytes.Split(info, []byte("\n")) {
			// The flags are octal; 02000000 is O_CLOEXEC.
			if v, ok := bytes.CutPrefix(line, []byte("flags:")); ok {
				flags, _ := strconv.ParseUint(string(bytes.TrimSpace(v)), 8, 64)
				if flags&unix.O_CLOEXEC == 0 {
					target, _ := os.Readlink(proc + "/fd/" + e.Name())
					r.Inheritable = append(r.Inheritable, e.Name()+" "+target)
				}
			}
		}
	}
}

// Probe has a sandbox of the pool report on its fences.
// With exec, it also tries to exec a program, which must fail.
func (p *Pool) Probe(ctx context.Context, exec bool) (FenceReport, sandbox.Result) {
	j := Job{Key: Key{Owner: "probe", Name: "probe"}, Limits: sandbox.Limits{Timeout: 10 * time.Second}, probe: true}
	if exec {
		j.Args = []byte("exec")
	}
	res := p.Run(ctx, j)
	var r FenceReport
	if res.Err == nil {
		json.Unmarshal(res.Value, &r)
		// The pool's only sandbox, or any of them: they are alike.
		r.inspect(p.Pids()[0])
	}
	return r, res
}
