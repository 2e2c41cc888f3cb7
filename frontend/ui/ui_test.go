package ui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"faas/frontend/ui"
)

func TestHandler(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(ui.Handler("/ui/"))
	t.Cleanup(srv.Close)
	tests := []struct {
		path, contentType, contains string
		status                      int
	}{
		{path: "/ui/", status: http.StatusOK, contentType: "text/html", contains: `<script src="app.js" defer>`},
		{path: "/ui/app.js", status: http.StatusOK, contentType: "text/javascript", contains: "'use strict'"},
		{path: "/ui/app.css", status: http.StatusOK, contentType: "text/css", contains: ":root"},
		{path: "/ui/missing.js", status: http.StatusNotFound},
		// The package's Go files are not among the embedded ones.
		{path: "/ui/ui.go", status: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			resp, err := http.Get(srv.URL + tt.path)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.status, resp.StatusCode, "%s", body)
			// Every answer carries the policy that forbids inline script.
			require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			if tt.status != http.StatusOK {
				return
			}
			require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), tt.contentType), resp.Header.Get("Content-Type"))
			require.Contains(t, string(body), tt.contains)
		})
	}
}
