package explorer_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/verity-network/verity/explorer"
)

func TestHandlerServesThePageAndItsAssets(t *testing.T) {
	h := explorer.Handler()
	for _, tc := range []struct {
		path, status, ctype, body string
	}{
		{"/", "200", "text/html", `<script type="module" src="/explorer/app.js">`},
		{"/explorer/app.js", "200", "text/javascript", `import { verifyCertificate } from "./verify.js"`},
		{"/explorer/verify.js", "200", "text/javascript", `from "./vendor/ethers-6.17.0.min.js"`},
		{"/explorer/vendor/ethers-6.17.0.min.js", "200", "text/javascript", `const version="6.17.0"`},
		{"/explorer/explorer.css", "200", "text/css", ":root"},
		{"/explorer/favicon.svg", "200", "image/svg+xml", "<svg"},
		{"/explorer/", "404", "", ""},
		{"/explorer/vendor/", "404", "", ""},
		{"/explorer/index.html", "404", "", ""},
		{"/explorer/nope.js", "404", "", ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
		res := rec.Result()
		body, _ := io.ReadAll(res.Body)
		if got := res.Status[:3]; got != tc.status {
			t.Errorf("GET %s: %s, want %s", tc.path, res.Status, tc.status)
			continue
		}
		if !strings.HasPrefix(res.Header.Get("Content-Type"), tc.ctype) {
			t.Errorf("GET %s: Content-Type %q, want %s", tc.path, res.Header.Get("Content-Type"), tc.ctype)
		}
		if !strings.Contains(string(body), tc.body) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.body)
		}
		// Every answer keeps the page to its node.
		csp := res.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("GET %s: Content-Security-Policy %q lacks %q", tc.path, csp, d)
			}
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", tc.path)
		}
	}
}

// The page loads nothing from anywhere but its node: no absolute URL in
// what it is made of (the vendored library is not read; it makes no
// request by itself, and the policy above would refuse one).
func TestPageLoadsNothingFromElsewhere(t *testing.T) {
	h := explorer.Handler()
	for _, path := range []string{"/", "/explorer/app.js", "/explorer/verify.js", "/explorer/explorer.css"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		// The SVG and XHTML namespace names are identifiers, not requests.
		body := strings.ReplaceAll(rec.Body.String(), "http://www.w3.org/", "")
		for _, scheme := range []string{"http://", "https://", "//cdn", "ws://", "wss://"} {
			if i := strings.Index(body, scheme); i >= 0 {
				t.Errorf("%s refers to %q", path, body[i:min(i+60, len(body))])
			}
		}
	}
}
