// Package proc starts child processes that are to die with their parent.
package proc

import (
	"os/exec"
	"runtime"
)

// Starter starts commands from one OS thread, locked until Close. Linux
// sends a child's parent-death signal (Pdeathsig) when the thread that
// forked it ends, not the process, and Go ends a thread under a goroutine
// that exits while locked to it: forked from any thread, a child could be
// killed mid-run by some other goroutine's exit.
type Starter struct {
	starts chan func()
	done   chan struct{}
}

// NewStarter returns a Starter; Close it when no more commands will start.
func NewStarter() *Starter {
	s := &Starter{starts: make(chan func()), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *Starter) loop() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(s.done)
	for start := range s.starts {
		start()
	}
}

// Start starts cmd on the Starter's thread.
func (s *Starter) Start(cmd *exec.Cmd) error {
	started := make(chan error, 1)
	s.starts <- func() { started <- cmd.Start() }
	return <-started
}

// Close ends the Starter's thread. Start must not be called after it.
func (s *Starter) Close() {
	close(s.starts)
	<-s.done
}
