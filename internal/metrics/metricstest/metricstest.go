// Package metricstest helps tests read a /metrics endpoint.
package metricstest

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// Scrape GETs url, with "Authorization: Bearer token" unless token is
// empty, and returns the status and the body.
func Scrape(t testing.TB, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}
