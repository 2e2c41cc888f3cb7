package pool

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"
)

// The operating system fences every sandbox process, beyond what the
// JavaScript runtime itself allows, so that code escaping the runtime
// finds little to use:
//
//   - an empty environment: nothing of the worker's (manager URLs,
//     credentials) reaches it; nor any descriptor the worker inherited;
//   - not dumpable: the other sandboxes, which share its user, cannot
//     trace it or read its memory (nor the worker's, when the worker is
//     not root and they share its user too);
//   - started by root, it changes its root to an empty, deleted directory,
//     so no file on the host is in reach, and drops to an unprivileged user
//     before it serves (the process is exec'd as root, so the executable
//     need not be readable by that user, and drops before any job
//     arrives);
//   - no_new_privs, so no exec can regain privileges;
//   - a seccomp filter denying what a JavaScript engine never needs: new
//     sockets, exec, fork, ptrace, mounts, namespaces, kernel modules,
//     changing credentials, signalling other processes;
//   - where the host allows, a network namespace of its own, holding only
//     a loopback device that is down.
//
// The parent sets what the kernel does at fork (environment, namespace);
// the child does the rest to itself, told how by a setup frame, the first
// one on its stdin, and reports in its hello what it could not do.

// DefaultSandboxUser is the user and group the sandboxes of a worker
// running as root run as, unless configured: nobody and nogroup.
const DefaultSandboxUser = 65534

// Fence configures the fences. Its zero value puts every fence up, with
// the default user; the off switches are for debugging only.
type Fence struct {
	// UID and GID are the user and group the sandboxes run as when the
	// worker runs as root; 0 means DefaultSandboxUser. A worker not
	// running as root cannot change user, and its sandboxes run as it.
	UID int `envconfig:"FAAS_SANDBOX_UID" default:"65534"`
	GID int `envconfig:"FAAS_SANDBOX_GID" default:"65534"`
	// NoSeccomp turns the system call filter off (no_new_privs stays).
	NoSeccomp bool `envconfig:"FAAS_SANDBOX_NO_SECCOMP"`
	// NoNetNS keeps the sandboxes in the worker's network namespace.
	NoNetNS bool `envconfig:"FAAS_SANDBOX_NO_NETNS"`
	// NoChroot leaves the sandboxes the host's file system.
	NoChroot bool `envconfig:"FAAS_SANDBOX_NO_CHROOT"`
}

func (f Fence) withDefaults() (Fence, error) {
	if f.UID == 0 {
		f.UID = DefaultSandboxUser
	}
	if f.GID == 0 {
		f.GID = DefaultSandboxUser
	}
	if f.UID < 0 || f.GID < 0 {
		return f, fmt.Errorf("sandbox user: FAAS_SANDBOX_UID=%d FAAS_SANDBOX_GID=%d, want positive ids (0 means %d)", f.UID, f.GID, DefaultSandboxUser)
	}
	return f, nil
}

// setup is the first frame the parent sends a sandbox: how to fence
// itself.
type setup struct {
	// UID and GID are the user to drop to, if the sandbox runs as root.
	UID int `json:"u"`
	GID int `json:"g"`
	// Seccomp asks for the system call filter.
	Seccomp bool `json:"sc"`
	// Chroot asks for an empty root directory, if the sandbox runs as
	// root.
	Chroot bool `json:"r,omitempty"`
}

// fenceSelf puts up the fences a sandbox puts up itself, in the order
// they allow: the root directory and the credentials first (they take
// privilege, and the filter forbids changing them), then no_new_privs and
// the filter. It returns what it could not do and why; an error means the
// sandbox must not serve.
func fenceSelf(s setup) (unfenced []string, err error) {
	// Not dumpable: other processes of its user (the other sandboxes)
	// can neither trace it nor read its memory or /proc files. A change
	// of user makes it so anyway; a sandbox of a worker that is not root
	// keeps its user.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		unfenced = append(unfenced, "not dumpable: "+err.Error())
	}
	if os.Geteuid() == 0 {
		if s.Chroot {
			if err := changeRoot(); err != nil {
				unfenced = append(unfenced, "chroot: "+err.Error())
			}
		}
		if err := dropPrivileges(s.UID, s.GID); err != nil {
			return nil, err
		}
	}
	if err := loadFilter(s.Seccomp); err != nil {
		unfenced = append(unfenced, "seccomp: "+err.Error())
	}
	return unfenced, nil
}

// closeInherited closes the descriptors above stderr the process was
// started with: whatever the worker itself inherited without
// close-on-exec (from a shell, a supervisor) would otherwise pass on to
// the sandbox. Everything the Go runtime opens is close-on-exec, so an
// inherited descriptor is one that is not.
func closeInherited() {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return // no /proc: nothing to go by
	}
	for _, e := range fds {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
}

// changeRoot makes an empty directory the process's root and working
// directory, and deletes it first: nothing can be created in a deleted
// directory, not even by root, and nothing is left behind for anyone to
// clean up, whatever becomes of the sandbox. The time zone is loaded
// before: it is the one file the runtime reads after start (goja's Date
// uses it).
func changeRoot() error {
	time.Now().Zone()
	dir, err := os.MkdirTemp("", "faas-sandbox-root-")
	if err != nil {
		return err
	}
	f, err := os.Open(dir)
	if err != nil {
		os.Remove(dir)
		return err
	}
	defer f.Close()
	if err := os.Remove(dir); err != nil {
		return err
	}
	if err := syscall.Fchdir(int(f.Fd())); err != nil {
		return err
	}
	return syscall.Chroot(".")
}

// dropPrivileges makes the process uid:gid with no supplementary groups.
// The Go runtime applies each change to every thread.
func dropPrivileges(uid, gid int) error {
	ppid := os.Getppid()
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("sandbox: drop supplementary groups: %w", err)
	}
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		return fmt.Errorf("sandbox: become group %d: %w", gid, err)
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return fmt.Errorf("sandbox: become user %d: %w", uid, err)
	}
	// The kernel clears the parent-death signal when the credentials
	// change: set it again, and make sure the parent did not die in
	// between, which would have gone unnoticed.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("sandbox: set the parent-death signal: %w", err)
	}
	if os.Getppid() != ppid {
		return errors.New("sandbox: the worker exited")
	}
	return nil
}

// guardWorker makes the worker not dumpable when its sandboxes will run
// as its own user (a worker not running as root cannot change theirs):
// else code escaping a sandbox could read the worker's environment in
// /proc/<pid>/environ, or its memory. It costs the worker its core dumps.
func guardWorker() error {
	if os.Geteuid() == 0 {
		return nil
	}
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}

// The clone flags that make new namespaces, which the filter refuses.
const newNamespaces = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// denied are the system calls the filter answers with EPERM. The list
// denies rather than allows: a Go program uses many system calls, and a
// missing one in an allow-list would kill sandboxes in production.
var denied = []string{
	// Network: no new sockets at all (the pipes are inherited).
	"socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
	// Other programs and processes.
	"execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
	"pidfd_open", "pidfd_getfd", "pidfd_send_signal", "tkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
	// Credentials.
	"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
	"setfsuid", "setfsgid", "capset",
	// File systems and namespaces.
	"mount", "umount2", "chroot", "pivot_root", "unshare", "setns", "open_by_handle_at",
	"name_to_handle_at", "fsopen", "fsmount", "fsconfig", "fspick", "move_mount", "open_tree",
	"mount_setattr", "mknod", "mknodat", "swapon", "swapoff", "quotactl", "acct", "fanotify_init",
	// The kernel itself.
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "bpf",
	"perf_event_open", "reboot", "iopl", "ioperm", "keyctl", "add_key", "request_key",
	"userfaultfd", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"sethostname", "setdomainname", "personality",
	// io_uring runs operations the filter would not see.
	"io_uring_setup", "io_uring_enter", "io_uring_register",
}

// hot are the system calls a sandbox makes for every job: its pipes, the
// Go runtime's scheduler and memory.
var hot = []string{"read", "write", "futex", "nanosleep", "epoll_pwait", "madvise", "mmap", "munmap",
	"sched_yield", "rt_sigreturn", "rt_sigprocmask", "getpid", "gettid"}

// policy is the filter of the process pid. Threads are allowed, but not
// processes (clone without CLONE_THREAD) nor namespaces; clone3, whose
// flags a filter cannot read, answers ENOSYS, so that C libraries fall
// back to clone. Signals may go to the process itself only: the Go runtime
// signals its own threads (preemption) and, on a crash, itself.
func policy(pid int) seccomp.Policy {
	self := []seccomp.Condition{{Argument: 0, Operation: seccomp.NotEqual, Value: uint64(pid)}}
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			// The filter is a chain of comparisons that every system
			// call walks until one matches: the calls a job makes,
			// allowed first, skip the rest of the chain.
			{Action: seccomp.ActionAllow, Names: hot},
			{Action: seccomp.ActionErrno, Names: denied, NamesWithCondtions: []seccomp.NameWithConditions{
				{Name: "clone", Conditions: []seccomp.Condition{{Argument: 0, Operation: seccomp.BitsNotSet, Value: unix.CLONE_THREAD}}},
				{Name: "clone", Conditions: []seccomp.Condition{{Argument: 0, Operation: seccomp.BitsSet, Value: newNamespaces}}},
				{Name: "kill", Conditions: self},
				{Name: "tgkill", Conditions: self},
			}},
			{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: []string{"clone3"}},
		},
	}
}

// loadFilter sets no_new_privs on every thread and, if on, installs the
// filter on every thread. With the filter off, a filter that allows
// everything is still loaded: it is how no_new_privs reaches every thread
// of the process. (The library wants at least one rule.)
func loadFilter(on bool) error {
	p := seccomp.Policy{DefaultAction: seccomp.ActionAllow, Syscalls: []seccomp.SyscallGroup{{Action: seccomp.ActionAllow, Names: []string{"getpid"}}}}
	if on {
		p = policy(os.Getpid())
	}
	return seccomp.LoadFilter(seccomp.Filter{NoNewPrivs: true, Flag: seccomp.FilterFlagTSync, Policy: p})
}

// netNSAttr sets the attributes that start a sandbox in a network
// namespace of its own: root may create one; another user creates a user
// namespace first, in which it keeps its own ids.
func netNSAttr(attr *syscall.SysProcAttr) {
	attr.Cloneflags = syscall.CLONE_NEWNET
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Geteuid(), HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getegid(), HostID: os.Getegid(), Size: 1}}
	}
}

// refusedNamespace tells whether err is the kernel refusing the namespaces
// netNSAttr asks for, rather than a failure to start the command at all
// (which must not cost the other sandboxes their namespace).
func refusedNamespace(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EPERM, syscall.EINVAL, syscall.ENOSPC, syscall.EUSERS} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}
