// Package ui is the web dashboard: a static page, its style sheet and a
// little plain JavaScript, embedded in the binary and served by the
// frontend under /ui/. The page talks to the REST API like any client,
// with the user's bearer token, so it needs no routes of its own and no
// build step.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// csp allows the page only its own origin: no inline script or style, so
// a function name or log line that slipped through as markup could not
// run, and no third party sees the user's token.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// Handler serves the dashboard's files for request paths under prefix
// (such as "/ui/"); the prefix itself serves the page.
func Handler(prefix string) http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the directory is embedded above, so this cannot happen
	}
	files := http.StripPrefix(prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change with the binary; revalidating costs a 304.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
