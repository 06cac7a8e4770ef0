package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// TestDemoOutput runs the demo and reads what it prints as a newcomer
// would: every line fits 80 columns, each sample's timeline never goes
// backwards, a claim no verdict can decide is not said to be "decided
// undecided", and counts are not mixed with stake.
func TestDemoOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 5-node network")
	}
	var out bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &out
	if err := app.Run([]string{"verity", "demo", "--timeout", "2m"}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	offsetRe := regexp.MustCompile(`^ +\+([0-9.]+(?:µs|ms|s|m[0-9.]+s))  `)
	var last time.Duration
	for _, l := range strings.Split(text, "\n") {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("%d columns: %q", n, l)
		}
		if strings.HasPrefix(l, "[") {
			last = 0 // a new sample's timeline
		}
		if m := offsetRe.FindStringSubmatch(l); m != nil {
			d, err := time.ParseDuration(m[1])
			if err != nil {
				t.Fatalf("offset %q: %v", m[1], err)
			}
			if d < last {
				t.Errorf("timeline goes backwards: %q after +%s", l, last)
			}
			last = d
		}
		if strings.Contains(l, "decided undecided") {
			t.Errorf("%q", l)
		}
		if strings.Contains(l, "stake") && strings.Contains(l, "validators)") {
			t.Errorf("stake and validator counts mixed: %q", l)
		}
	}
	for _, want := range []string{"=> VERIFIED", "=> REJECTED", "=> UNRESOLVED", "undecided: no verdict can reach quorum", "Offline check"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
}

// TestDemoServe runs `verity demo --serve`, fetches the explorer at the
// address it prints, and stops it with SIGINT, as Ctrl-C would.
func TestDemoServe(t *testing.T) {
	bin := buildVerity(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := startVerity(t, bin, "demo", "demo", "--serve")
	line := p.waitLine(ctx, t, "Explorer: ")
	url := strings.TrimSpace(strings.TrimPrefix(line, "Explorer: "))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "<title>Verity explorer</title>") {
		t.Fatalf("GET %s: %s\n%s", url, res.Status, body)
	}
	p.waitLine(ctx, t, "(node0's; every node serves one). Serving until Ctrl-C.")
	if code := p.signalAndWait(t, syscall.SIGINT, 30*time.Second); code != 0 {
		t.Fatalf("demo --serve exited %d after SIGINT; stderr:\n%s", code, p.stderrText())
	}
}
