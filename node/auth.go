package node

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// clientIdentity names the client of a request for the audit trail: the
// name of its API token when it presents a valid one, else its remote host.
func (h *httpAPI) clientIdentity(r *http.Request) string {
	if name, ok := h.tokenName(r); ok {
		return "token:" + name
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// bearerToken is the token of r's Authorization header when its scheme is
// Bearer, which RFC 7235 makes case-insensitive ("bearer x", "BEARER x"),
// followed by one or more spaces.
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimLeft(tok, " ")
	return tok, tok != ""
}

// tokenName returns the name of the client token r presents, if valid.
func (h *httpAPI) tokenName(r *http.Request) (string, bool) {
	tok, ok := bearerToken(r)
	if !ok {
		return "", false
	}
	for name, want := range h.opts.Tokens {
		if subtle.ConstantTimeCompare([]byte(tok), []byte(want)) == 1 {
			return name, true
		}
	}
	return "", false
}

var errUnauthorized = errors.New("unauthorized")

// authorize checks the bearer token when the node has tokens configured.
func (h *httpAPI) authorize(r *http.Request) error {
	if len(h.opts.Tokens) == 0 {
		return nil
	}
	if _, ok := h.tokenName(r); ok {
		return nil
	}
	return errUnauthorized
}

// admit checks a POST request: bearer token, then the client's rate. It
// answers the request itself and returns false when it may not proceed.
func (h *httpAPI) admit(w http.ResponseWriter, r *http.Request, what string) bool {
	if err := h.authorize(r); err != nil {
		writeError(w, http.StatusUnauthorized, "unauthorized", what+" needs a valid bearer token")
		return false
	}
	return h.rateLimit(w, r)
}

// rateLimit charges one request to the client's bucket, answering 429 with
// Retry-After and returning false when it is empty.
func (h *httpAPI) rateLimit(w http.ResponseWriter, r *http.Request) bool {
	if h.opts.RateLimit < 0 {
		return true
	}
	if ok, wait := h.limiter.allow(h.clientIdentity(r), h.clock.Now()); !ok {
		secs := int(wait/time.Second) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, http.StatusTooManyRequests, "rate_limited", fmt.Sprintf("too many requests from this client; retry in %ds", secs))
		return false
	}
	return true
}
