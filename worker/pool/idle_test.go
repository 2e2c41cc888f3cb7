package pool

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestIdleSandboxesLastInFirstOut checks that a run takes the sandbox
// that went idle last, and that each taken sandbox had its token.
func TestIdleSandboxesLastInFirstOut(t *testing.T) {
	t.Parallel()
	s := newIdleSandboxes(3)
	a, b, c := &child{}, &child{}, &child{}
	s.put(a)
	s.put(b)
	<-s.ready
	assert.Same(t, b, s.pop())
	s.put(c)
	s.put(b)
	for _, want := range []*child{b, c, a} {
		<-s.ready
		assert.Same(t, want, s.pop())
	}
	assert.Empty(t, s.ready, "a token left without its sandbox")
}
