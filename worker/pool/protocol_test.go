package pool

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

func TestFrameRoundTrip(t *testing.T) {
	t.Parallel()
	var wire bytes.Buffer
	enc := newEncoder()
	value, logs := []byte(`{"a":[1,2]}`), []byte("line\n")
	for range 3 { // the buffers are reused
		b, err := enc.frame(reply{Err: faas.Errorf(faas.Timeout, "late"), ValueLen: len(value), LogsLen: len(logs)}, value, logs)
		require.NoError(t, err)
		wire.Write(b)
	}
	dec := decoder{r: &wire}
	for range 3 {
		var rep reply
		parts, err := dec.next(&rep, 1<<10)
		require.NoError(t, err)
		assert.Equal(t, faas.Timeout, rep.Err.Code)
		p, err := split(parts, rep.ValueLen, rep.LogsLen)
		require.NoError(t, err)
		assert.Equal(t, value, p[0])
		assert.Equal(t, logs, p[1])
	}
	_, err := dec.next(&reply{}, 1<<10)
	assert.Error(t, err, "end of the stream")

	b, err := enc.frame(reply{}, make([]byte, 2000))
	require.NoError(t, err)
	_, err = (&decoder{r: bytes.NewReader(b)}).next(&reply{}, 1<<10)
	assert.ErrorIs(t, err, errFrameTooLarge)
}

// FuzzDecoder feeds the parent's reader whatever a broken or hostile
// sandbox might write: it must return an error, never panic or allocate
// past its bound.
func FuzzDecoder(f *testing.F) {
	enc := newEncoder()
	ok, _ := enc.frame(reply{ValueLen: 1, LogsLen: 2}, []byte("1"), []byte("ab"))
	f.Add(bytes.Clone(ok))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, '{', '}'})
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := decoder{r: bytes.NewReader(data)}
		for {
			var rep reply
			parts, err := dec.next(&rep, 1<<16)
			if err != nil {
				return
			}
			if len(parts) > 1<<16 {
				t.Fatalf("a frame of %d bytes passed a bound of %d", len(parts), 1<<16)
			}
			split(parts, rep.ValueLen, rep.LogsLen)
		}
	})
}
