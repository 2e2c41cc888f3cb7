package frontend_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestJobInfoNamesItsTrace checks that a client's trace context crosses
// the frontend, the bus and the Store, so that the job's record names the
// trace it joined; and that a job submitted outside a trace names none.
// No exporter is installed here: the trace context must flow through a
// platform whose spans go nowhere.
func TestJobInfoNamesItsTrace(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "trace")
	p.upload(t, user, token, "add", addSrc)

	h := bearer(token)
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	status, rep := p.doHeader(t, "POST", "/u/"+user+"/fn/add/run", []byte("[1,2]"), h)
	require.Equal(t, http.StatusAccepted, status, "run: %s", rep.Res)
	traced := rep.str(t)
	untraced := p.submit(t, user, token, "add", "[3,4]")

	for id, want := range map[string]string{traced: "4bf92f3577b34da6a3ce929d0e0e4736", untraced: ""} {
		p.awaitJob(t, token, id)
		require.Equal(t, want, p.info(t, token, id).TraceID, "job %s", id)
	}
}
