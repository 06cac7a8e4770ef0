// Command load drives a CometBFT network's RPC the way scripts/cometbft/run.sh
// compares it with Verity: sequential broadcast_tx_commit for the time to a
// committed transaction, and closed-loop broadcast_tx_sync clients for the
// saturated rate of committed transactions, counted from the blocks.
//
//	go run ./scripts/cometbft/load -rpc http://127.0.0.1:26657 -mode latency -n 200
//	go run ./scripts/cometbft/load -rpc http://127.0.0.1:26657,... -mode saturate -clients 8 -duration 10s
//
// It is run by hand through the script, not by the tests.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	rpcs := flag.String("rpc", "http://127.0.0.1:26657", "comma-separated RPC addresses; clients rotate over them")
	mode := flag.String("mode", "latency", "latency (sequential broadcast_tx_commit) or saturate (closed-loop broadcast_tx_sync)")
	n := flag.Int("n", 200, "latency mode: transactions to commit one after another")
	rate := flag.Float64("rate", 20, "latency mode: transactions per second at most (0: back to back)")
	clients := flag.Int("clients", 8, "saturate mode: concurrent clients")
	duration := flag.Duration("duration", 10*time.Second, "saturate mode: measured time")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	flag.Parse()

	c := &rpc{urls: strings.Split(*rpcs, ","), http: &http.Client{Timeout: 30 * time.Second}}
	var res result
	var err error
	switch *mode {
	case "latency":
		res, err = latency(c, *n, *rate)
	case "saturate":
		res, err = saturate(c, *clients, *duration)
	default:
		err = fmt.Errorf("unknown -mode %q: want latency or saturate", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(res)
		return
	}
	fmt.Println(res)
}

type result struct {
	Mode      string  `json:"mode"`
	Committed int     `json:"committed"`
	Failed    int     `json:"failed"`
	Seconds   float64 `json:"seconds"`
	TxPerSec  float64 `json:"tx_per_sec"`
	P50ms     float64 `json:"p50_ms,omitempty"`
	P99ms     float64 `json:"p99_ms,omitempty"`
}

func (r result) String() string {
	if r.Mode == "latency" {
		return fmt.Sprintf("cometbft latency: %d committed, %d failed, p50 %.2f ms, p99 %.2f ms",
			r.Committed, r.Failed, r.P50ms, r.P99ms)
	}
	return fmt.Sprintf("cometbft saturate: %d committed in %.1f s = %.0f tx/s, %d failed",
		r.Committed, r.Seconds, r.TxPerSec, r.Failed)
}

type rpc struct {
	urls []string
	http *http.Client
	next atomic.Uint64
	seq  atomic.Uint64
}

// call posts one JSON-RPC request to the url and decodes its result.
func (c *rpc) call(ctx context.Context, url, method string, params any, out any) error {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Message string `json:"message"`
			Data    string `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s: %s: %w", url, method, err)
	}
	if env.Error != nil {
		return fmt.Errorf("%s: %s: %s %s", url, method, env.Error.Message, env.Error.Data)
	}
	return json.Unmarshal(env.Result, out)
}

// tx returns a unique key=value transaction for the kvstore application.
func (c *rpc) tx() string {
	k := c.seq.Add(1)
	v := fmt.Sprintf("bench-%d-%d=%d", os.Getpid(), k, time.Now().UnixNano())
	return base64.StdEncoding.EncodeToString([]byte(v))
}

func (c *rpc) url() string { return c.urls[c.next.Add(1)%uint64(len(c.urls))] }

func latency(c *rpc, n int, rate float64) (result, error) {
	ctx := context.Background()
	var took []time.Duration
	failed := 0
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		tick = t.C
	}
	for range n {
		if tick != nil {
			<-tick
		}
		var out struct {
			CheckTx  struct{ Code int } `json:"check_tx"`
			TxResult struct{ Code int } `json:"tx_result"`
		}
		start := time.Now()
		err := c.call(ctx, c.url(), "broadcast_tx_commit", map[string]string{"tx": c.tx()}, &out)
		if err != nil || out.CheckTx.Code != 0 || out.TxResult.Code != 0 {
			failed++
			continue
		}
		took = append(took, time.Since(start))
	}
	if len(took) == 0 {
		return result{}, errors.New("no transaction was committed")
	}
	slices.Sort(took)
	ms := func(q float64) float64 {
		return float64(took[min(len(took)-1, int(q*float64(len(took))))]) / 1e6
	}
	return result{Mode: "latency", Committed: len(took), Failed: failed, P50ms: ms(0.50), P99ms: ms(0.99)}, nil
}

// height is the newest block height of the first RPC address.
func (c *rpc) height(ctx context.Context) (int64, error) {
	var st struct {
		SyncInfo struct {
			Height string `json:"latest_block_height"`
		} `json:"sync_info"`
	}
	if err := c.call(ctx, c.urls[0], "status", map[string]any{}, &st); err != nil {
		return 0, err
	}
	return strconv.ParseInt(st.SyncInfo.Height, 10, 64)
}

// txsIn sums the transactions of blocks (from, to].
func (c *rpc) txsIn(ctx context.Context, from, to int64) (int, error) {
	total := 0
	for lo := from + 1; lo <= to; lo += 20 {
		hi := min(lo+19, to)
		var out struct {
			Metas []struct {
				NumTxs string `json:"num_txs"`
			} `json:"block_metas"`
		}
		err := c.call(ctx, c.urls[0], "blockchain",
			map[string]string{"minHeight": strconv.FormatInt(lo, 10), "maxHeight": strconv.FormatInt(hi, 10)}, &out)
		if err != nil {
			return 0, err
		}
		for _, m := range out.Metas {
			k, _ := strconv.Atoi(m.NumTxs)
			total += k
		}
	}
	return total, nil
}

// saturate keeps clients broadcast_tx_sync calls in flight for d and counts
// the transactions the blocks committed meanwhile.
func saturate(c *rpc, clients int, d time.Duration) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	h0, err := c.height(context.Background())
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				var out struct {
					Code int
					Log  string
				}
				err := c.call(ctx, c.url(), "broadcast_tx_sync", map[string]string{"tx": c.tx()}, &out)
				switch {
				case err != nil && ctx.Err() == nil:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				case err == nil && out.Code != 0:
					e := fmt.Errorf("check_tx code %d: %s", out.Code, out.Log)
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &e)
				}
			}
		})
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(os.Stderr, "load: %d calls failed; the first: %v\n", failed.Load(), *e)
	}
	h1, err := c.height(context.Background())
	elapsed := time.Since(start)
	if err != nil {
		return result{}, err
	}
	n, err := c.txsIn(context.Background(), h0, h1)
	if err != nil {
		return result{}, err
	}
	return result{Mode: "saturate", Committed: n, Failed: int(failed.Load()),
		Seconds: elapsed.Seconds(), TxPerSec: float64(n) / elapsed.Seconds()}, nil
}
