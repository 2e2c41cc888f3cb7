package frontend_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend"
	"faas/frontend/client"
)

// TestServerLifecycle checks New's synchronous bind, Handler, and that Run
// ends promptly on cancel, answering a request still waiting for its job.
func TestServerLifecycle(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	cfg := frontend.Config{Listen: "127.0.0.1:0", Auth: "on", RequestTimeout: 3 * time.Second}

	taken := cfg
	taken.Listen = p.url[len("http://"):]
	_, err := frontend.New(taken, p.store, p.queue, p.log)
	require.ErrorContains(t, err, "address already in use")

	bad := cfg
	bad.Auth = "maybe"
	_, err = frontend.New(bad, p.store, p.queue, p.log)
	require.ErrorContains(t, err, "FAAS_AUTH")

	fe, err := frontend.New(cfg, p.store, p.queue, p.log)
	require.NoError(t, err)

	// Handler serves the same API without the server's own listener.
	hs := httptest.NewServer(fe.Handler())
	defer hs.Close()
	require.NoError(t, client.New(hs.URL).Healthz(context.Background()))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- fe.Run(ctx) }()

	second := &platform{url: "http://" + fe.Addr(), client: p.client}
	user, token := second.newUser(t, "life")
	// It would run for 10s; its 2s limit keeps a worker from being held.
	second.expect(t, http.StatusCreated, "POST", "/u/"+user+"/fn/hang?timeout=2s", token, []byte(`async function hang(){ await new Promise(r => setTimeout(r, 10000)) }`))

	type answer struct {
		status int
		rep    reply
	}
	answered := make(chan answer, 1)
	go func() {
		status, rep := second.do(t, "POST", "/u/"+user+"/fn/hang/run?wait=30s", token, nil)
		answered <- answer{status, rep}
	}()
	time.Sleep(300 * time.Millisecond) // the request is waiting by now

	start := time.Now()
	cancel()
	select {
	case err := <-ran:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	require.Less(t, time.Since(start), 2*time.Second, "a waiting request held up shutdown")
	var a answer
	select {
	case a = <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting request got no answer")
	}
	require.Equal(t, http.StatusAccepted, a.status, "res: %s", a.rep.Res)
	require.Equal(t, "/j/"+a.rep.str(t), a.rep.Header.Get("Location"))

	_, err = net.DialTimeout("tcp", fe.Addr(), time.Second)
	require.Error(t, err, "the listener is closed")
	require.Error(t, fe.Run(context.Background()), "Run runs once")
}
