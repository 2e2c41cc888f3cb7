package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// IOStreams are a command's input and outputs, and whether they reach a
// person: tables and the spinner are for terminals only.
type IOStreams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// IsTTY is true when Err is a terminal, where the spinner may draw.
	IsTTY bool
}

// SystemIO is the process's standard streams.
func SystemIO() *IOStreams {
	return &IOStreams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, IsTTY: isTerminal(os.Stderr)}
}

// isTerminal reports whether f is a character device, as a terminal is
// (and a pipe or a file is not).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// StartSpinner draws a spinner with msg on Err until the returned function
// is called, which erases it. Off a terminal it draws nothing, so scripts
// and logs never see it.
func (s *IOStreams) StartSpinner(msg string) (stop func()) {
	if !s.IsTTY {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		frames := `|/-\`
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(s.Err, "\r%c %s", frames[i%len(frames)], msg)
			select {
			case <-done:
				fmt.Fprintf(s.Err, "\r%*s\r", len(msg)+2, "")
				return
			case <-t.C:
			}
		}
	})
	return sync.OnceFunc(func() { close(done); wg.Wait() })
}
