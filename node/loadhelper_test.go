package node_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The load tests play their clients in processes of this test binary
// (TestLoadHelper), so that the clients' work runs on no Go scheduler of
// the node's and what is measured is the node: a command on stdin, one
// line of answer on stdout.

// loadHelperEnv names the helper's role: "probe", "streams" or "conns".
const loadHelperEnv = "VERITY_LOAD_HELPER"

// loadHelper is a helper process and the pipes to it.
type loadHelper struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startHelper starts a helper of role with env, and waits for its first
// line ("ready" or an error).
func startHelper(t *testing.T, role string, env ...string) *loadHelper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadHelper$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(append(os.Environ(), loadHelperEnv+"="+role), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &loadHelper{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	h.out.Buffer(make([]byte, 64<<10), 64<<20)
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	if line := h.line(t); line != "ready" {
		t.Fatalf("%s helper: %s", role, line)
	}
	return h
}

// line reads the helper's next answer, skipping what the test framework
// prints.
func (h *loadHelper) line(t *testing.T) string {
	t.Helper()
	for h.out.Scan() {
		if v, ok := strings.CutPrefix(h.out.Text(), "helper: "); ok {
			return v
		}
	}
	t.Fatalf("helper ended: %v", h.out.Err())
	return ""
}

// ask sends a command and returns the answer.
func (h *loadHelper) ask(t *testing.T, cmd string) string {
	t.Helper()
	if _, err := fmt.Fprintln(h.in, cmd); err != nil {
		t.Fatalf("helper command %q: %v", cmd, err)
	}
	return h.line(t)
}

// TestLoadHelper is a helper process of the load tests, not a test.
func TestLoadHelper(t *testing.T) {
	role := os.Getenv(loadHelperEnv)
	if role == "" {
		t.Skip("a helper process of the load tests")
	}
	say := func(format string, args ...any) { fmt.Printf("helper: "+format+"\n", args...) }
	cmds := bufio.NewScanner(os.Stdin)
	switch role {
	case "probe":
		helpProbe(say, cmds)
	case "streams":
		helpStreams(say, cmds)
	case "conns":
		helpConns(say, cmds)
	default:
		say("unknown role %q", role)
	}
}

// helpProbe GETs VERITY_LOAD_URL/healthz on a new connection every
// VERITY_LOAD_EVERY. Commands: count, mark TEXT, stop (answers the
// probeResult as JSON).
func helpProbe(say func(string, ...any), cmds *bufio.Scanner) {
	base := os.Getenv("VERITY_LOAD_URL")
	every, err := time.ParseDuration(os.Getenv("VERITY_LOAD_EVERY"))
	if err != nil {
		say("VERITY_LOAD_EVERY: %v", err)
		return
	}
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	var (
		mu    sync.Mutex
		r     probeResult
		began = time.Now()
	)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			start := time.Now()
			resp, err := cl.Get(base + "/healthz")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			d := time.Since(start)
			mu.Lock()
			r.Latencies = append(r.Latencies, d)
			if d > healthBound {
				r.Slow = append(r.Slow, fmt.Sprintf("+%s: %s", start.Sub(began).Round(time.Millisecond), d.Round(time.Millisecond)))
			}
			switch {
			case err != nil:
				r.Fails = append(r.Fails, err.Error())
			case resp.StatusCode != http.StatusOK:
				r.Fails = append(r.Fails, resp.Status)
			}
			mu.Unlock()
		}
	}()
	say("ready")
	for cmds.Scan() {
		cmd, arg, _ := strings.Cut(cmds.Text(), " ")
		switch cmd {
		case "count":
			mu.Lock()
			say("%d", len(r.Latencies))
			mu.Unlock()
		case "mark":
			mu.Lock()
			r.Marks = append(r.Marks, fmt.Sprintf("+%s %s", time.Since(began).Round(time.Millisecond), arg))
			mu.Unlock()
			say("ok")
		case "stop":
			close(stop)
			<-done
			data, _ := json.Marshal(r)
			say("%s", data)
			return
		}
	}
}

// helpStreams opens VERITY_LOAD_STREAMS streams of GET
// VERITY_LOAD_ADDR/v1/events and counts the certificates each sees.
// Commands: certs (answers the least and the most any open stream saw),
// hangup K (closes the first K), close (closes the rest and ends).
func helpStreams(say func(string, ...any), cmds *bufio.Scanner) {
	addr := os.Getenv("VERITY_LOAD_ADDR")
	n, err := strconv.Atoi(os.Getenv("VERITY_LOAD_STREAMS"))
	if err != nil {
		say("VERITY_LOAD_STREAMS: %v", err)
		return
	}
	type stream struct {
		s     *rawStream
		certs atomic.Int64
		ended chan struct{}
	}
	streams := make([]*stream, n)
	var failed atomic.Value
	parallel(n, 16, func(i int) {
		s, err := openRawStream(addr, "/v1/events", nil)
		if err == nil && s.resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("HTTP %d", s.resp.StatusCode)
		}
		if err != nil {
			failed.Store(fmt.Sprintf("stream %d: %v", i, err))
			return
		}
		st := &stream{s: s, ended: make(chan struct{})}
		streams[i] = st
		go func() { // as light as a client can be: it counts certificates
			defer close(st.ended)
			for s.sc.Scan() {
				if bytes.Equal(s.sc.Bytes(), certLine) {
					st.certs.Add(1)
				}
			}
		}()
	})
	if f, _ := failed.Load().(string); f != "" {
		say("%s", f)
		return
	}
	say("ready")
	first := 0 // streams[:first] hung up
	for cmds.Scan() {
		cmd, arg, _ := strings.Cut(cmds.Text(), " ")
		switch cmd {
		case "certs":
			lo, hi := int64(-1), int64(0)
			for _, st := range streams[first:] {
				c := st.certs.Load()
				if lo < 0 || c < lo {
					lo = c
				}
				hi = max(hi, c)
			}
			say("%d %d", lo, hi)
		case "hangup":
			k, _ := strconv.Atoi(arg)
			for _, st := range streams[first : first+k] {
				st.s.Close()
				<-st.ended
			}
			first += k
			say("ok")
		case "close":
			for _, st := range streams[first:] {
				st.s.Close()
				<-st.ended
			}
			say("ok")
			return
		}
	}
}

// helpConns opens, to VERITY_LOAD_ADDR, the idle, silent and slow-body
// connections VERITY_LOAD_CONNS counts ("idle,silent,slow"), says ready
// when all are open, and on "results" answers, once the node has closed
// them all (or 30s passed), each one's connResult as a JSON array.
func helpConns(say func(string, ...any), cmds *bufio.Scanner) {
	addr := os.Getenv("VERITY_LOAD_ADDR")
	var idle, silent, slow int
	if _, err := fmt.Sscanf(os.Getenv("VERITY_LOAD_CONNS"), "%d,%d,%d", &idle, &silent, &slow); err != nil {
		say("VERITY_LOAD_CONNS: %v", err)
		return
	}
	results := make(chan connResult, idle+silent+slow)
	// waitClose reads until the node closes the connection.
	waitClose := func(c net.Conn, r io.Reader, since time.Time, res connResult) {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := io.Copy(io.Discard, r)
		res.Life = time.Since(since)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			res.Err = "still open 30s later"
		}
		c.Close()
		results <- res
	}
	dial := func(kind string) net.Conn {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			results <- connResult{Kind: kind, Err: err.Error()}
			return nil
		}
		return c
	}
	parallel(idle, 16, func(int) {
		c := dial("idle")
		if c == nil {
			return
		}
		br := bufio.NewReader(c)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			c.Close()
			results <- connResult{Kind: "idle", Err: err.Error()}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		go waitClose(c, br, time.Now(), connResult{Kind: "idle", Status: resp.StatusCode})
	})
	parallel(silent, 8, func(int) {
		c := dial("silent")
		if c == nil {
			return
		}
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n", addr) // and never the blank line
		go waitClose(c, c, time.Now(), connResult{Kind: "silent"})
	})
	parallel(slow, 8, func(int) {
		c := dial("slow")
		if c == nil {
			return
		}
		start := time.Now()
		fmt.Fprintf(c, "POST /v1/verify HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", addr)
		stop := make(chan struct{})
		go func() { // a byte every 500ms, until the node hangs up
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
		go func() {
			defer close(stop)
			br := bufio.NewReader(c)
			res := connResult{Kind: "slow"}
			if resp, err := http.ReadResponse(br, nil); err == nil {
				res.Status = resp.StatusCode
			}
			waitClose(c, br, start, res)
		}()
	})
	say("ready")
	for cmds.Scan() {
		if cmds.Text() != "results" {
			continue
		}
		var all []connResult
		timeout := time.After(40 * time.Second)
		for len(all) < idle+silent+slow {
			select {
			case r := <-results:
				all = append(all, r)
			case <-timeout:
				say("%d of %d connections still open after 40s", idle+silent+slow-len(all), idle+silent+slow)
				return
			}
		}
		data, _ := json.Marshal(all)
		say("%s", data)
		return
	}
}
