package faas_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// TestStreamRecord: a record has a letter per line of the stored text, a
// message with newlines counting as several lines, ends without the
// 'l's a reader assumes, and reads back as the lines' streams.
func TestStreamRecord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		lines  []faas.LogLine
		record string
	}{
		{"none", nil, ""},
		{"only log", []faas.LogLine{{Stream: faas.StreamLog, Line: "a"}, {Stream: faas.StreamLog, Line: "b"}}, ""},
		{"every stream", []faas.LogLine{{Stream: faas.StreamInfo}, {Stream: faas.StreamLog}, {Stream: faas.StreamWarn}, {Stream: faas.StreamError}}, "ilwe"},
		{"trailing log", []faas.LogLine{{Stream: faas.StreamError}, {Stream: faas.StreamLog}}, "e"},
		{"newlines", []faas.LogLine{{Stream: faas.StreamWarn, Line: "a\nb\n"}, {Stream: faas.StreamInfo, Line: "c"}}, "wwwi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			record := faas.TrimStreams(faas.AppendStreams(nil, tc.lines))
			require.Equal(t, tc.record, record)
			i := 0
			for _, l := range tc.lines {
				for range strings.Count(l.Line, "\n") + 1 {
					require.Equal(t, l.Stream, faas.LineStream(record, i), "line %d", i)
					i++
				}
			}
			require.Equal(t, faas.StreamLog, faas.LineStream(record, i+3), "past the record")
		})
	}
	require.Equal(t, faas.StreamLog, faas.LineStream("x", 0), "an unknown letter")
}
