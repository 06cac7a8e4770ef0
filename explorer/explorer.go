package explorer

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed assets
var assets embed.FS

// Prefix is the path under which the page's scripts, styles and the
// vendored libraries are served; the page itself is at "/".
const Prefix = "/explorer/"

// securityHeaders keep the page to its node: scripts and styles from the
// node only, no inline code, connections (fetch, EventSource) to the node
// only, and no framing by another site.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "no-referrer",
	"X-Frame-Options":        "DENY",
}

// Handler serves the explorer: the page at "/" and its assets under
// Prefix. Register it for "GET /{$}" and "GET /explorer/"; any other path
// is answered 404.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix(Prefix, http.FileServerFS(sub))
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range securityHeaders {
			h.Set(k, v)
		}
		switch {
		case r.URL.Path == "/":
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
			_, _ = w.Write(index)
		case strings.HasPrefix(r.URL.Path, Prefix) && !strings.HasSuffix(r.URL.Path, "/") && r.URL.Path != Prefix+"index.html":
			h.Set("Cache-Control", "no-cache")
			files.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}
