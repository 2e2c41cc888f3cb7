package pool

import (
	"os"
)

// ServeBroken is a sandbox that says hello and then dies of a bug in the
// middle of its first job, as a sandbox with a bug would.
func ServeBroken() {
	b, _ := newEncoder().frame(hello{})
	os.Stdout.Write(b)
	var req request
	dec := decoder{r: os.Stdin}
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
