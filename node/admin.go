package node

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// AdminTokenFile is where a node with no admin token configured writes the
// one it draws at each start: in its data directory, readable by its owner
// only. Whoever can read it is on the node's machine as the node's user.
const AdminTokenFile = "admin.token"

// ErrNoAdminToken means no admin token can be found for a node.
var ErrNoAdminToken = errors.New("no admin token")

// AdminP2PRequest is the body of POST /v1/admin/p2p.
type AdminP2PRequest struct {
	Action string `json:"action"` // "disconnect" or "connect"
}

// setupAdminToken sets the token of the admin routes: the configured one,
// else a fresh random one written to DataDir/admin.token.
func (h *httpAPI) setupAdminToken() error {
	if h.opts.AdminToken != "" {
		h.adminToken = h.opts.AdminToken
		return nil
	}
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	tok := hex.EncodeToString(b[:])
	if err := writePrivateFile(filepath.Join(h.opts.DataDir, AdminTokenFile), tok+"\n"); err != nil {
		return fmt.Errorf("node: admin token: %w", err)
	}
	h.adminToken = tok
	return nil
}

// AdminToken is the bearer token of the node's admin routes (after Start).
func (n *Node) AdminToken() string { return n.api.adminToken }

// writePrivateFile replaces path with data, readable by its owner only,
// so that a reader never sees half of it.
func writePrivateFile(path, data string) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readTokenFile reads a token from the first line of a file.
func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warnw("token file is readable by others; chmod 600 it", "file", path, "mode", st.Mode().Perm().String())
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1024), 4096)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
	}
	tok := strings.TrimSpace(sc.Text())
	if tok == "" {
		return "", fmt.Errorf("%w: %s is empty", ErrNoAdminToken, path)
	}
	return tok, nil
}

// ReadAdminToken reads the admin token of the node cfg describes: from its
// [api] admin_token_file, else from the admin.token the node writes into
// its data directory when it starts.
func ReadAdminToken(cfg *Config) (string, error) {
	path, hint := cfg.Path(cfg.API.AdminTokenFile), "its config's [api] admin_token_file"
	if path == "" {
		path, hint = filepath.Join(cfg.Path(cfg.DataDir), AdminTokenFile), "a node writes it when it starts"
	}
	tok, err := readTokenFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%w: %s does not exist (%s)", ErrNoAdminToken, path, hint)
	}
	return tok, err
}

// admitAdmin checks a request to an admin route, answering it itself and
// returning false when it may not proceed. An admin route must be out of a
// web page's reach, whatever the page's origin: the client must be on the
// node's machine (loopback), name the node by a loopback Host (which a
// page on another name, DNS rebinding included, cannot send), send no
// Origin (every browser sends one with a POST), present the admin token,
// which no client token matches, and send JSON, which a form cannot.
func (h *httpAPI) admitAdmin(w http.ResponseWriter, r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		writeError(w, http.StatusForbidden, "forbidden", "admin routes answer loopback clients only")
		return false
	}
	port := localPort(r)
	if !loopbackHost(r.Host, port) {
		writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf(
			"admin routes need the Host header to name this node by a loopback address (127.0.0.1:%s, [::1]:%s or localhost:%s); got %q", port, port, port, r.Host))
		return false
	}
	if _, ok := r.Header["Origin"]; ok {
		writeError(w, http.StatusForbidden, "forbidden", "admin routes refuse requests with an Origin header: a web page may not call them")
		return false
	}
	tok, ok := bearerToken(r)
	if !ok || h.adminToken == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(h.adminToken)) != 1 {
		writeError(w, http.StatusUnauthorized, "unauthorized",
			"admin routes need the node's admin token (Authorization: Bearer, the token in [api] admin_token_file or else data/admin.token); client tokens are not admin tokens")
		return false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
			fmt.Sprintf("admin routes need Content-Type: application/json; got %q", r.Header.Get("Content-Type")))
		return false
	}
	return true
}

// localPort is the port the request's connection came in on, "" when
// unknown.
func localPort(r *http.Request) string {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return ""
	}
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return ""
	}
	return port
}

// loopbackHost reports whether a Host header names a loopback address
// (localhost or a loopback IP) and the given port (80 when it names none).
func loopbackHost(hostHeader, port string) bool {
	h, p, err := net.SplitHostPort(hostHeader)
	if err != nil {
		h, p = strings.TrimSuffix(strings.TrimPrefix(hostHeader, "["), "]"), "80"
	}
	if port == "" || p != port {
		return false
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// handleAdminP2P cuts the node off the network or reconnects it, for fault
// tests. admitAdmin says who may.
func (h *httpAPI) handleAdminP2P(w http.ResponseWriter, r *http.Request) {
	if !h.admitAdmin(w, r) {
		return
	}
	var req AdminP2PRequest
	if !h.decodeBody(w, r, &req) {
		return
	}
	switch req.Action {
	case "disconnect":
		h.net.SetOffline(true)
	case "connect":
		h.net.SetOffline(false)
	default:
		writeError(w, http.StatusBadRequest, "invalid_action", fmt.Sprintf("action %q: want disconnect or connect", req.Action))
		return
	}
	log.Infow("p2p admin action", "action", req.Action)
	writeJSON(w, http.StatusOK, map[string]any{"action": req.Action, "offline": h.net.Offline(), "peers": len(h.net.ConnectedPeers())})
}
