package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/internal/testtier"
	"github.com/verity-network/verity/node"
)

// healthBound is what the issue asks of /healthz under every load here:
// its 99th percentile latency. It is checked in builds without the race
// detector, which makes the node's work several times slower; with it the
// latencies are logged.
const healthBound = 100 * time.Millisecond

// healthProbe is a process of this test binary (loadHelper "probe") that
// GETs /healthz on a new connection every interval, as a monitor that is
// none of the load's clients would: its own work runs on no scheduler of
// the node's.
type healthProbe struct {
	h *loadHelper
}

func startHealthProbe(t *testing.T, base string, every time.Duration) *healthProbe {
	return &healthProbe{h: startHelper(t, "probe", "VERITY_LOAD_URL="+base, "VERITY_LOAD_EVERY="+every.String())}
}

// taken is the number of probes so far.
func (p *healthProbe) taken(t *testing.T) int {
	n, _ := strconv.Atoi(p.h.ask(t, "count"))
	return n
}

// mark notes a phase of the load, to read the slow probes against.
func (p *healthProbe) mark(t *testing.T, what string) { p.h.ask(t, "mark "+what) }

// probeResult is what the probe process reports when it stops.
type probeResult struct {
	Latencies []time.Duration `json:"latencies"`
	Fails     []string        `json:"fails"`
	Slow      []string        `json:"slow"`
	Marks     []string        `json:"marks"`
}

// finish stops the probe and checks its 99th percentile against
// healthBound and that no probe failed.
func (p *healthProbe) finish(t *testing.T) (p50, p99, worst time.Duration) {
	t.Helper()
	var r probeResult
	if err := json.Unmarshal([]byte(p.h.ask(t, "stop")), &r); err != nil {
		t.Fatalf("probe result: %v", err)
	}
	lat := r.Latencies
	if len(lat) < 20 {
		t.Fatalf("only %d health probes", len(lat))
	}
	slices.Sort(lat)
	at := func(q float64) time.Duration { return lat[int(math.Ceil(q*float64(len(lat))))-1] }
	p50, p99, worst = at(0.5), at(0.99), lat[len(lat)-1]
	t.Logf("/healthz over %d probes on new connections: p50 %s, p99 %s, max %s, %d failed",
		len(lat), p50.Round(time.Microsecond), p99.Round(time.Microsecond), worst.Round(time.Microsecond), len(r.Fails))
	if len(r.Slow) > 0 {
		t.Logf("probes over %s: %s (phases: %s)", healthBound, strings.Join(r.Slow, ", "), strings.Join(r.Marks, ", "))
	}
	if len(r.Fails) > 0 {
		t.Errorf("%d of %d health probes failed, the first: %s", len(r.Fails), len(lat), r.Fails[0])
	}
	switch {
	case raceEnabled:
		t.Logf("race detector on: the %s bound on the p99 is checked without it", healthBound)
	case p99 > healthBound:
		t.Errorf("/healthz p99 %s, want under %s", p99, healthBound)
	}
	return p50, p99, worst
}

// memory is the Go heap and stacks in use after a collection, and the
// process's resident set.
func memory() (goMem, rss uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	data, _ := os.ReadFile("/proc/self/status")
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			rss = kb << 10
		}
	}
	return m.HeapInuse + m.StackInuse, rss
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// waitGoroutines waits until the goroutines are back to at most base+slack.
func waitGoroutines(t *testing.T, base, slack int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for runtime.NumGoroutine() > base+slack {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines %s after the load, %d before", runtime.NumGoroutine(), d, base)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// parallel runs f(i) for i in [0, n) on workers goroutines.
func parallel(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		})
	}
	wg.Wait()
}

var certLine = []byte("event: " + api.EventCertificateIssued)

// TestEventStreamClients: 200 event-stream clients, half of which hang up
// (TestLongEventStreamClients: 1,000).
func TestEventStreamClients(t *testing.T) { eventStreamClients(t, 200) }

func TestLongEventStreamClients(t *testing.T) {
	testtier.Long(t, "1,000 event-stream clients")
	eventStreamClients(t, 1000)
}

// jobEvery is the rate of jobs under the stream load, each fanned out to
// every stream.
const jobEvery = 250 * time.Millisecond

// eventStreamClients opens clients streams of every event on one node (in
// a helper process), runs a job every jobEvery through the node, hangs up
// half the streams, runs more jobs and closes the rest, while another
// process probes /healthz. A departed client's stream must be released at
// once (the node's count of streams, then its goroutines back to where
// they were), a stream past the cap refused, and the node's memory per
// stream bounded.
func eventStreamClients(t *testing.T, clients int) {
	nd := startOne(t, func(o *node.Options) {
		o.APILimits.MaxEventStreams = clients
		o.APILimits.MaxConnections = 2*clients + 64
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := client.New(nd.APIURL())
	certify(t, ctx, nd, answer) // warm every path up
	waitFor(t, 10*time.Second, "warm-up stream released", func() bool { return nd.EventStreams() == 0 })
	baseG := runtime.NumGoroutine()
	baseMem, baseRSS := memory()
	probe := startHealthProbe(t, nd.APIURL(), 5*time.Millisecond)

	began := time.Now()
	streams := startHelper(t, "streams", "VERITY_LOAD_ADDR="+nd.APIAddr(), fmt.Sprintf("VERITY_LOAD_STREAMS=%d", clients))
	waitFor(t, 10*time.Second, "every stream served", func() bool { return nd.EventStreams() == clients })
	opened := time.Since(began)

	extra, err := openRawStream(nd.APIAddr(), "/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(extra.resp.Body)
	extra.Close()
	var apiErr api.Error
	if extra.resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &apiErr) != nil || apiErr.Code != "too_many_streams" {
		t.Fatalf("stream %d past the cap: HTTP %d %s, want 503 too_many_streams", clients+1, extra.resp.StatusCode, body)
	}

	// runJobs submits a job every jobEvery until the probe has taken
	// minProbes more probes (and at least 3 jobs ran), then waits until
	// every open stream saw every certificate: /healthz is measured under
	// that load.
	const minProbes = 200
	submitted := 0
	runJobs := func() (jobs int, took time.Duration) {
		start, probes := time.Now(), probe.taken(t)
		tick := time.NewTicker(jobEvery)
		defer tick.Stop()
		for jobs < 3 || probe.taken(t)-probes < minProbes {
			submitted++
			out := fmt.Sprintf("%d + %d = %d. %s", submitted, submitted, 2*submitted, answer)
			if _, err := cl.Submit(ctx, api.VerifyRequest{Output: out}); err != nil {
				t.Fatal(err)
			}
			jobs++
			<-tick.C
		}
		waitFor(t, 60*time.Second, "every stream saw every certificate", func() bool {
			var lo, hi int
			fmt.Sscan(streams.ask(t, "certs"), &lo, &hi)
			return lo >= submitted
		})
		return jobs, time.Since(start)
	}
	probe.mark(t, "streams open")
	jobs, fanOut := runJobs()
	probe.mark(t, "jobs to every stream done")
	peakMem, peakRSS := memory()
	probe.mark(t, "memory measured")

	half := clients / 2
	streams.ask(t, fmt.Sprintf("hangup %d", half))
	released := waitFor(t, 10*time.Second, "departed streams released", func() bool { return nd.EventStreams() == clients-half })
	probe.mark(t, "hang-ups released")
	jobsHalf, fanOutHalf := runJobs()
	probe.mark(t, "jobs to the remaining streams done")
	if n := nd.EventStreams(); n != clients-half {
		t.Fatalf("%d streams served after the jobs, want the %d left", n, clients-half)
	}
	streams.ask(t, "close")
	waitFor(t, 10*time.Second, "every stream released", func() bool { return nd.EventStreams() == 0 })
	waitGoroutines(t, baseG, 10, 10*time.Second)
	probe.finish(t)
	perStream := (peakMem - min(peakMem, baseMem)) / uint64(clients)
	t.Logf("%d streams served in %s; %d jobs (one per %s) to every stream in %s, %d to the %d left in %s; %d hang-ups released in %s; "+
		"the node's Go heap+stacks %s -> %s (%s per stream), RSS %s -> %s; goroutines back to %d",
		clients, opened.Round(time.Millisecond), jobs, jobEvery, fanOut.Round(time.Millisecond), jobsHalf, clients-half, fanOutHalf.Round(time.Millisecond),
		half, released.Round(time.Millisecond), mib(baseMem), mib(peakMem), fmt.Sprintf("%.1f KiB", float64(perStream)/1024), mib(baseRSS), mib(peakRSS), runtime.NumGoroutine())
	// A stream holds a connection with its buffers, two goroutines and a
	// queue of 1024 event pointers: 64 KiB covers it with room.
	if perStream > 64<<10 {
		t.Errorf("%.1f KiB of Go memory per stream, want at most 64 KiB", float64(perStream)/1024)
	}
}

// TestConnectionTimeouts: idle keep-alive connections, silent connections
// and slow bodies are each closed by their timeout (2s header, 4s read, 4s
// idle) while /healthz answers (TestLongConnectionTimeouts: 2,000 idle,
// 300 silent and 300 slow bodies).
func TestConnectionTimeouts(t *testing.T) { connectionTimeouts(t, 200, 30, 30) }

func TestLongConnectionTimeouts(t *testing.T) {
	testtier.Long(t, "2,000 idle connections and 300 slow bodies")
	connectionTimeouts(t, 2000, 300, 300)
}

// raiseFDLimit raises the soft limit on open files to need if the hard
// limit allows, and returns the soft limit then.
func raiseFDLimit(t *testing.T, need uint64) uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	if r.Cur < need && r.Max > r.Cur {
		old := r.Cur
		r.Cur = min(need, r.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err == nil {
			t.Cleanup(func() { r.Cur = old; syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r) })
		}
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	}
	return r.Cur
}

// connResult is one connection of the conns helper: its kind, how long
// from its last byte until the node closed it, and the status it read.
type connResult struct {
	Kind   string        `json:"kind"`
	Life   time.Duration `json:"life"`
	Status int           `json:"status"`
	Err    string        `json:"err,omitempty"`
}

// connectionTimeouts opens idle keep-alive connections (each after one
// request), silent ones (a header never finished) and slow bodies (a byte
// every 500ms) from a helper process, all within the node's timeouts, and
// checks that the node closes each at its timeout while another process
// probes /healthz.
func connectionTimeouts(t *testing.T, idle, silent, slow int) {
	// The node's end of every connection lives in this process, the
	// client's in the helper; Go raises the helper's soft limit itself.
	need := uint64(idle + silent + slow + 512)
	if have := raiseFDLimit(t, need); have < need {
		scale := float64(have-512) / float64(need-512)
		idle, silent, slow = int(float64(idle)*scale), int(float64(silent)*scale), int(float64(slow)*scale)
		t.Logf("file descriptor limit %d: scaled down to %d idle, %d silent, %d slow", have, idle, silent, slow)
	}
	limits := node.APILimits{
		ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 4 * time.Second, WriteTimeout: 4 * time.Second, IdleTimeout: 4 * time.Second,
		MaxConnections: idle + silent + slow + 64,
	}
	nd := startOne(t, func(o *node.Options) {
		o.APILimits = limits
		o.RateLimit = -1 // every slow body reaches its handler
	})
	baseG := runtime.NumGoroutine()
	probe := startHealthProbe(t, nd.APIURL(), 10*time.Millisecond)
	began := time.Now()
	conns := startHelper(t, "conns", "VERITY_LOAD_ADDR="+nd.APIAddr(),
		fmt.Sprintf("VERITY_LOAD_CONNS=%d,%d,%d", idle, silent, slow))
	opened := time.Since(began)
	probe.mark(t, "connections open")
	peak := nd.APIConnections()
	var results []connResult
	if err := json.Unmarshal([]byte(conns.ask(t, "results")), &results); err != nil {
		t.Fatalf("conns helper: %v", err)
	}
	closedAll := time.Since(began)
	probe.mark(t, "connections closed")
	if len(results) != idle+silent+slow {
		t.Fatalf("%d results, want %d", len(results), idle+silent+slow)
	}

	want := map[string]time.Duration{"idle": limits.IdleTimeout, "silent": limits.ReadHeaderTimeout, "slow": limits.ReadTimeout}
	longest := map[string]time.Duration{}
	statuses := map[string]map[int]int{"idle": {}, "slow": {}, "silent": {}}
	const slack = 3 * time.Second
	for _, r := range results {
		if r.Err != "" {
			t.Errorf("%s connection: %s", r.Kind, r.Err)
			continue
		}
		statuses[r.Kind][r.Status]++
		longest[r.Kind] = max(longest[r.Kind], r.Life)
		if r.Life > want[r.Kind]+slack {
			t.Errorf("%s connection closed %s after its last byte, want its timeout %s (within %s)", r.Kind, r.Life.Round(time.Millisecond), want[r.Kind], slack)
		}
	}
	waitFor(t, 10*time.Second, "every connection released", func() bool { return nd.APIConnections() == 0 })
	// Closed by their timeouts, none to make room for another.
	if ev, ref := scrape(t, nd, "verity_api_connections_evicted_total"), scrape(t, nd, "verity_api_connections_refused_total"); ev != 0 || ref != 0 {
		t.Errorf("%v connections evicted and %v refused, want none under the cap", ev, ref)
	}
	waitGoroutines(t, baseG, 10, 10*time.Second)
	probe.finish(t)
	t.Logf("%d idle, %d silent, %d slow-body connections opened in %s (%d open at once on the node); all closed %s after the first; "+
		"longest from the last byte to the close: idle %s (timeout %s), silent %s (header timeout %s), slow body %s (read timeout %s); statuses: idle %v, slow %v",
		idle, silent, slow, opened.Round(time.Millisecond), peak, closedAll.Round(time.Millisecond),
		longest["idle"].Round(time.Millisecond), limits.IdleTimeout, longest["silent"].Round(time.Millisecond), limits.ReadHeaderTimeout,
		longest["slow"].Round(time.Millisecond), limits.ReadTimeout, statuses["idle"], statuses["slow"])
}

// scrape reads one metric of the node's /metrics.
func scrape(t *testing.T, nd *node.Node, name string) float64 {
	t.Helper()
	resp, err := http.Get(nd.APIURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(readAll(t, resp), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, v)
			}
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestSlowBodyTimesOut: a body that stops coming is answered 408
// body_timeout at the read timeout.
func TestSlowBodyTimesOut(t *testing.T) {
	nd := startOne(t, func(o *node.Options) { o.APILimits.ReadTimeout = time.Second })
	// The server's clock for the read timeout starts when it accepts the
	// connection, which may be a moment before Dial returns here.
	start := time.Now()
	c, err := net.Dial("tcp", nd.APIAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/verify HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"output\": ", nd.APIAddr())
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	var e api.Error
	if resp.StatusCode != http.StatusRequestTimeout || json.Unmarshal([]byte(body), &e) != nil || e.Code != "body_timeout" {
		t.Fatalf("HTTP %d %s, want 408 body_timeout", resp.StatusCode, body)
	}
	if d := time.Since(start); d < time.Second || d > 8*time.Second {
		t.Fatalf("answered after %s, want the read timeout of 1s", d)
	}
}

// TestConnectionCapEvictsIdle: at MaxConnections a new connection closes
// the one idle longest, so /healthz is reached however many idle
// connections clients leave; when every connection is busy, a new one is
// answered 503 too_many_connections and closed.
func TestConnectionCapEvictsIdle(t *testing.T) {
	const capacity = 32
	nd := startOne(t, func(o *node.Options) {
		o.APILimits = node.APILimits{MaxConnections: capacity, ReadTimeout: 2 * time.Second}
		o.RateLimit = -1
	})
	addr := nd.APIAddr()
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := range 3 * capacity {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connection %d past %d idle ones: %v", i, i, err)
		}
		resp.Body.Close()
	}
	if n := nd.APIConnections(); n > capacity {
		t.Fatalf("%d connections open, cap %d", n, capacity)
	}
	// Enough probes at the cap for a percentile, however busy the machine.
	probe := startHealthProbe(t, nd.APIURL(), 5*time.Millisecond)
	waitFor(t, 60*time.Second, "20 health probes at the cap", func() bool { return probe.taken(t) >= 20 })
	probe.finish(t)
	for _, c := range idle {
		c.Close()
	}
	waitFor(t, 5*time.Second, "idle connections released", func() bool { return nd.APIConnections() == 0 })

	// Every place taken by a body in progress.
	var busy []net.Conn
	defer func() {
		for _, c := range busy {
			c.Close()
		}
	}()
	for range capacity {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		busy = append(busy, c)
		fmt.Fprintf(c, "POST /v1/verify HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", addr)
	}
	waitFor(t, 5*time.Second, "every place busy", func() bool { return nd.APIConnections() == capacity })
	time.Sleep(50 * time.Millisecond) // the last request headers read: active, not new
	resp, err := http.Get(nd.APIURL() + "/healthz")
	if err != nil {
		t.Fatalf("at the cap, every connection busy: %v, want a 503 answer", err)
	}
	body := readAll(t, resp)
	var e api.Error
	if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &e) != nil || e.Code != "too_many_connections" {
		t.Fatalf("at the cap, every connection busy: HTTP %d %s, want 503 too_many_connections", resp.StatusCode, body)
	}
	// The read timeout frees the places.
	waitFor(t, 10*time.Second, "slow bodies cut off", func() bool { return nd.APIConnections() == 0 })
	resp, err = http.Get(nd.APIURL() + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after the slow bodies: %v", err)
	}
	resp.Body.Close()
}
