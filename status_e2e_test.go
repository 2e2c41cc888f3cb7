package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend/client"
)

// TestStatusAcrossFrontends runs the managers, a worker and two frontends
// as processes: a job polled through both answers the same at every
// stage (the second frontend learns of it through the queue's Status and
// events, never having submitted it), and a deletion through one is seen
// by the other, whose cache had the finished job.
func TestStatusAcrossFrontends(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.startAll(1)
	ports, err := freePorts(1)
	require.NoError(t, err)
	c.start("frontend2", "frontend", fmt.Sprintf("PORT=%d", ports[0]))
	second := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	require.Eventually(t, func() bool {
		resp, err := c.httpClient().Get(second + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "second frontend not ready")

	one := c.register(t, "poller")
	two := &api{Client: client.New(second, client.WithHTTPClient(c.httpClient())).As(one.User(), one.Token()), t: t}
	one.upload("slow", client.Deploy{Source: `async function slow(){ await new Promise(r => setTimeout(r, 1500)); return 7 }`})
	id := one.submit("slow", "")

	// same asks both frontends each read of the job and reports whether
	// they answered the same and the job had finished.
	sawLive := false
	same := func() bool {
		t.Helper()
		finished := false
		for _, path := range []string{"/j/" + id, "/j/" + id + "/res", "/j/" + id + "/info"} {
			a, b := one.do("GET", path, ""), two.do("GET", path, "")
			if a.Status != b.Status || string(a.Res) != string(b.Res) {
				// A read between the two may see the job move on: read
				// again until both see one state.
				return false
			}
			if path == "/j/"+id+"/res" {
				finished = a.Status != http.StatusConflict
			}
		}
		sawLive = sawLive || !finished
		return finished
	}
	// Three reads per frontend every 20 ms keep within the user's rate
	// limit (200 a second, bursts of 400): read faster, and the reads of
	// the job's last second come back 429 from one frontend and not yet
	// from the other.
	require.Eventually(t, same, 30*time.Second, 20*time.Millisecond, "the job did not finish with the same answers on both frontends")
	require.True(t, sawLive, "the frontends never agreed while the job was queued or running")
	// Finished: from now on nothing moves, so the answers must agree.
	for range 3 {
		require.True(t, same(), "the frontends disagree about a finished job")
	}
	res := two.do("GET", "/j/"+id+"/res", "")
	require.Equal(t, http.StatusOK, res.Status)
	require.JSONEq(t, "7", string(res.Res))

	require.Equal(t, http.StatusOK, two.do("DELETE", "/j/"+id, "").Status)
	require.Equal(t, http.StatusNotFound, two.do("GET", "/j/"+id, "").Status)
	require.Eventually(t, func() bool {
		return one.do("GET", "/j/"+id+"/res", "").Status == http.StatusNotFound
	}, 5*time.Second, 10*time.Millisecond, "the other frontend still answers the deleted job")
}
