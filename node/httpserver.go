package node

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// APILimits bound what HTTP clients can hold of a node: time, connections
// and event streams. Zero fields take the defaults below.
type APILimits struct {
	// ReadHeaderTimeout bounds reading a request's header (default 10s),
	// and is how long a connection may stay open without sending one.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, header and body
	// (default 30s): a body that trickles in slower is cut off with 408.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response (default 30s). Long polls
	// (?wait=) get it on top of their wait; an event stream gets it for
	// each write, so a client that stops reading is dropped after it.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request for that
	// long (default 60s).
	IdleTimeout time.Duration
	// MaxConnections bounds the open HTTP connections (default 2048, and
	// never more than three quarters of the process's file descriptor
	// limit). At the bound a new connection closes the one idle longest;
	// when none is idle it is answered 503 and closed.
	MaxConnections int
	// MaxEventStreams bounds the event streams served at once (default
	// 512); beyond it GET /v1/events and GET /v1/jobs/{id}/events answer
	// 503 too_many_streams.
	MaxEventStreams int
	// ReplayEvents and ReplayBytes bound what one stream replays from the
	// event buffer (default 1024 events, 4 MiB, and at least one event).
	// A stream with more to replay ends after that much, and the client
	// resumes with Last-Event-ID.
	ReplayEvents int
	ReplayBytes  int
}

// Defaults of APILimits.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxConnections    = 2048
	DefaultMaxEventStreams   = 512
	DefaultReplayEvents      = 1024
	DefaultReplayBytes       = 4 << 20
)

// maxHeaderBytes bounds a request's header; the API's headers are short.
const maxHeaderBytes = 64 << 10

func (l *APILimits) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&l.ReadTimeout, DefaultReadTimeout)
	def(&l.WriteTimeout, DefaultWriteTimeout)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxEventStreams == 0 {
		l.MaxEventStreams = DefaultMaxEventStreams
	}
	if l.ReplayEvents == 0 {
		l.ReplayEvents = DefaultReplayEvents
	}
	if l.ReplayBytes == 0 {
		l.ReplayBytes = DefaultReplayBytes
	}
}

func (l *APILimits) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"read header timeout", l.ReadHeaderTimeout}, {"read timeout", l.ReadTimeout}, {"write timeout", l.WriteTimeout}, {"idle timeout", l.IdleTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("api %s %s: must be positive", d.name, d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"max connections", l.MaxConnections}, {"max event streams", l.MaxEventStreams}, {"replay events", l.ReplayEvents}, {"replay bytes", l.ReplayBytes}} {
		if n.v < 0 {
			return fmt.Errorf("api %s %d: must be positive", n.name, n.v)
		}
	}
	return nil
}

// connectionCap is MaxConnections, lowered to three quarters of the file
// descriptor limit when that is known, so that peers, the store and
// /healthz keep descriptors when the API is full.
func connectionCap(limit int) int {
	if fds := fdLimit(); fds > 0 {
		limit = min(limit, max(fds*3/4, 16))
	}
	return limit
}

// newAPIServer is the node's HTTP server: every timeout of limits set, and
// its connections tracked by cl.
func newAPIServer(h http.Handler, limits APILimits, cl *connLimiter) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
		ReadTimeout:       limits.ReadTimeout,
		WriteTimeout:      limits.WriteTimeout,
		IdleTimeout:       limits.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         cl.track,
	}
}

// connLimiter is a listener that holds at most max connections. At the
// bound, a new connection evicts the connection idle longest (a keep-alive
// connection between requests, or one that has not sent a whole request
// header yet): such a connection holds nothing a client would lose but the
// connection itself. When every connection is busy the new one is answered
// 503 and closed within a second, so that it holds no place in the
// kernel's accept queue, and /healthz is reached as soon as one connection
// is idle.
type connLimiter struct {
	net.Listener
	max int
	now func() time.Time

	mu    sync.Mutex
	conns map[*limitedConn]struct{}

	evicted, refused atomic.Uint64
	// refusing bounds the refusals being written at once.
	refusing chan struct{}
}

type limitedConn struct {
	net.Conn
	l *connLimiter
	// state and since are guarded by l.mu.
	state http.ConnState
	since time.Time
}

func newConnLimiter(ln net.Listener, max int, now func() time.Time) *connLimiter {
	return &connLimiter{Listener: ln, max: max, now: now, conns: make(map[*limitedConn]struct{}), refusing: make(chan struct{}, 64)}
}

// refuse answers a connection 503 and closes it within a second. It reads
// the request header first, as a client expects its answer after its
// request (Go's client drops a connection that speaks first), and what
// follows before closing, so that the client gets the answer rather than
// a reset.
func refuse(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	br := bufio.NewReaderSize(io.LimitReader(c, maxRefusalRead), 1024)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
	}
	if _, err := fmt.Fprintf(c, refusal, len(refusalBody), refusalBody); err != nil {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	io.Copy(io.Discard, br)
}

// maxRefusalRead bounds what a refused connection is read of.
const maxRefusalRead = 64 << 10

// refusal is written to a connection refused at the bound.
const refusal = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: %d\r\n\r\n%s"

var refusalBody = `{"error":"too_many_connections","message":"this node holds its maximum of HTTP connections and none is idle; retry later"}` + "\n"

// Accept returns the next connection, making room for it or refusing it.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitedConn{Conn: c, l: l, state: http.StateNew, since: l.now()}
		l.mu.Lock()
		var victim *limitedConn
		if len(l.conns) >= l.max {
			victim = l.longestIdleLocked()
			if victim == nil {
				l.mu.Unlock()
				l.refused.Add(1)
				select {
				case l.refusing <- struct{}{}:
					go func() {
						defer func() { <-l.refusing }()
						refuse(c)
					}()
				default:
					c.Close()
				}
				continue
			}
			delete(l.conns, victim)
		}
		l.conns[lc] = struct{}{}
		l.mu.Unlock()
		if victim != nil {
			l.evicted.Add(1)
			victim.Conn.Close() // the server's own Close of it follows, a no-op
		}
		return lc, nil
	}
}

// longestIdleLocked is the connection idle (or new) longest, nil when all
// are busy.
func (l *connLimiter) longestIdleLocked() *limitedConn {
	var best *limitedConn
	for c := range l.conns {
		if c.state != http.StateIdle && c.state != http.StateNew {
			continue
		}
		if best == nil || c.since.Before(best.since) {
			best = c
		}
	}
	return best
}

// track is the server's ConnState hook.
func (l *connLimiter) track(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lc.state, lc.since = s, l.now()
	if s == http.StateClosed || s == http.StateHijacked {
		delete(l.conns, lc)
	}
}

// Close releases the connection's place.
func (c *limitedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// open is the number of connections held.
func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// streamGate counts the event streams served and refuses those past max.
type streamGate struct {
	max    int64
	active atomic.Int64
}

func (g *streamGate) acquire() bool {
	if g.active.Add(1) > g.max {
		g.active.Add(-1)
		return false
	}
	return true
}

func (g *streamGate) release() { g.active.Add(-1) }

// registerMetrics adds the HTTP server's gauges and counters to the
// node's registry.
func (h *httpAPI) registerMetrics(cl *connLimiter) {
	h.metrics.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "verity_api_connections", Help: "Open HTTP API connections.",
		}, func() float64 { return float64(cl.open()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "verity_api_connections_evicted_total", Help: "Idle HTTP connections closed to make room for a new one at the connection bound.",
		}, func() float64 { return float64(cl.evicted.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "verity_api_connections_refused_total", Help: "HTTP connections refused at the connection bound, every connection being busy.",
		}, func() float64 { return float64(cl.refused.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "verity_api_event_streams", Help: "Event streams being served.",
		}, func() float64 { return float64(h.streams.active.Load()) }),
	)
}

// APIConnections is the number of open HTTP API connections.
func (n *Node) APIConnections() int {
	if n.conns == nil {
		return 0
	}
	return n.conns.open()
}

// EventStreams is the number of event streams being served.
func (n *Node) EventStreams() int { return int(n.api.streams.active.Load()) }
