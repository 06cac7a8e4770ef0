// Command table prints the side-by-side table of scripts/cometbft/run.sh
// from the results it wrote: the median of the rounds for each figure,
// then each round's own, whose spread says how far to trust the medians.
//
//	go run ./scripts/cometbft/table DIR
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

type cometbft struct {
	Committed int     `json:"committed"`
	Failed    int     `json:"failed"`
	TxPerSec  float64 `json:"tx_per_sec"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
}

type verity struct {
	Certified int `json:"certified"`
	NotFinal  int `json:"not_final"`
	Latency   struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
	} `json:"latency_ms"`
	PerSec    float64 `json:"certificates_per_second"`
	CPUPerCrt float64 `json:"cpu_seconds_per_certificate"`
	InFlight  int     `json:"concurrency"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: table DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	cl, err := readLines(filepath.Join(dir, "cometbft-latency.jsonl"))
	check(err)
	cs, err := readLines(filepath.Join(dir, "cometbft-saturate.jsonl"))
	check(err)
	vl, err := readVerity(dir, "verity-latency")
	check(err)
	vs, err := readVerity(dir, "verity-saturate")
	check(err)

	cP50 := median(cl, func(r cometbft) float64 { return r.P50ms })
	cP99 := median(cl, func(r cometbft) float64 { return r.P99ms })
	cTPS := median(cs, func(r cometbft) float64 { return r.TxPerSec })
	vP50 := median(vl, func(r verity) float64 { return r.Latency.P50 })
	vP99 := median(vl, func(r verity) float64 { return r.Latency.P99 })
	vTPS := median(vs, func(r verity) float64 { return r.PerSec })
	vCPU := median(vs, func(r verity) float64 { return r.CPUPerCrt * 1000 })
	notFinal := 0
	for _, r := range append(vl, vs...) {
		notFinal += r.NotFinal
	}
	failed := 0
	for _, r := range append(cl, cs...) {
		failed += r.Failed
	}

	fmt.Printf("medians of %d rounds (Verity in-process; CometBFT over its RPC)\n\n", len(vl))
	fmt.Println("| | Verity | CometBFT | Verity ÷ CometBFT |")
	fmt.Println("| --- | --- | --- | --- |")
	fmt.Printf("| light load p50 / p99, 4 validators, 1 item, 20/s | %.2f / %.2f ms | %.1f / %.1f ms | %.3f / %.3f |\n",
		vP50, vP99, cP50, cP99, vP50/cP50, vP99/cP99)
	fmt.Printf("| saturated items per second | %.0f certificates/s (closed loop, %d in flight) | %.0f tx/s (8 clients) | %.2f |\n",
		vTPS, vs[0].InFlight, cTPS, vTPS/cTPS)
	fmt.Printf("| Verity CPU per certificate (all nodes) | %.1f ms | | |\n", vCPU)
	fmt.Printf("\nVerity jobs not final: %d; CometBFT transactions failed: %d\n", notFinal, failed)

	fmt.Println("\neach round: saturated items per second, and light load")
	fmt.Println("round   Verity/s  CometBFT/s  ratio   Verity p50 / p99   CometBFT p50 / p99")
	for i := range min(len(vl), len(vs), len(cl), len(cs)) {
		fmt.Printf("%5d   %8.0f  %10.0f  %5.2f   %5.2f / %5.2f ms   %5.1f / %5.1f ms\n", i+1,
			vs[i].PerSec, cs[i].TxPerSec, vs[i].PerSec/cs[i].TxPerSec, vl[i].Latency.P50, vl[i].Latency.P99, cl[i].P50ms, cl[i].P99ms)
	}
}

func readLines(path string) ([]cometbft, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cometbft
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r cometbft
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// readVerity reads DIR/NAME-1.json, NAME-2.json and on, in round order,
// until one is missing.
func readVerity(dir, name string) ([]verity, error) {
	var out []verity
	for round := 1; ; round++ {
		p := filepath.Join(dir, fmt.Sprintf("%s-%d.json", name, round))
		raw, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) && round > 1 {
			break
		}
		if err != nil {
			return nil, err
		}
		var r verity
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func median[T any](rs []T, f func(T) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "table:", err)
		os.Exit(1)
	}
}
