package frontend_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDashboardRoutes checks what the server sends to the dashboard's
// files and what it leaves to the API: only GET and HEAD under /ui/ are
// files, and a path that merely starts with "/ui" is the API's.
func TestDashboardRoutes(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	// Redirects are what is checked, not followed.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		method, path string
		status       int
		// want is in the body, or the Location of a redirect.
		want string
	}{
		{method: "GET", path: "/ui", status: http.StatusMovedPermanently, want: "/ui/"},
		{method: "GET", path: "/ui/", status: http.StatusOK, want: "<title>faas dashboard</title>"},
		{method: "HEAD", path: "/ui/app.js", status: http.StatusOK},
		{method: "GET", path: "/ui/nothing-here", status: http.StatusNotFound},
		{method: "POST", path: "/ui/", status: http.StatusNotFound, want: `"code":"not_found"`},
		{method: "GET", path: "/uiother", status: http.StatusNotFound, want: `"code":"not_found"`},
		{method: "GET", path: "/healthz", status: http.StatusOK, want: `"res":"ok"`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tt.method, p.url+tt.path, nil)
			require.NoError(t, err)
			resp, err := client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.status, resp.StatusCode, "%s", body)
			if tt.status == http.StatusMovedPermanently {
				require.Equal(t, tt.want, resp.Header.Get("Location"))
				return
			}
			require.True(t, strings.Contains(string(body), tt.want), "%s", body)
		})
	}
}
