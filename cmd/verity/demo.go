package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/models"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/testnet"
)

// demoSample is one shipped output with the status the network must reach.
type demoSample struct {
	title  string
	output string
	want   consensus.Status
}

var demoSamples = []demoSample{
	{"all true", "Paris is the capital of France and Berlin is the capital of Germany. Water boils at 100 degrees Celsius at sea level.", consensus.StatusVerified},
	{"one false claim", "The Earth orbits the Sun. The Great Wall of China is visible from the Moon with the naked eye.", consensus.StatusRejected},
	{"mixed", "Tokyo is the capital of Japan; the capital of Australia is Sydney. Light travels faster than sound.", consensus.StatusRejected},
	{"arithmetic", "17 * 3 = 51 and 144 / 12 = 12. 0.1 + 0.2 = 0.3.", consensus.StatusVerified},
	{"unknown to the knowledge base", "The Amazon is a river in South America. The demo's author had toast for breakfast.", consensus.StatusUnresolved},
}

// The demo's prompt and generator seed: the simulated model answers with
// one false statement of the knowledge base and two true ones.
const (
	demoPrompt        = "Tell me about the Sun and the Earth."
	demoGeneratorSeed = 3
)

func init() {
	register(&cli.Command{
		Name:  "demo",
		Usage: "run a 5-node network in this process and verify sample outputs end to end",
		Description: `Starts 5 validators in one process (real libp2p on 127.0.0.1, real secp256k1
keys and signatures), submits the shipped sample outputs through node0's HTTP
API, shows each one's timeline from provisional answer to certificate, then
verifies every certificate offline against the genesis. Needs no setup.`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "nodes", Value: 5, Usage: "number of validators"},
			&cli.DurationFlag{Name: "timeout", Value: time.Minute, Usage: "bound on the whole demo"},
			&cli.BoolFlag{Name: "serve", Usage: "then keep the network up and serve the explorer until Ctrl-C"},
		},
		Action: runDemo,
	})
}

func runDemo(c *cli.Context) error {
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	w := c.App.Writer
	dir, err := os.MkdirTemp("", "verity-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// node0 also answers prompts with a simulated model that hallucinates
	// half of the time, deterministically under its seed.
	gen, err := models.NewGenerator(models.Spec{Kind: models.KindSimulated, HallucinationRate: 0.5, Seed: demoGeneratorSeed})
	if err != nil {
		return err
	}
	net, err := startDemoNetwork(ctx, w, c.Int("nodes"), dir, gen)
	if err != nil {
		return err
	}
	defer net.Stop()
	nodes := net.Nodes()
	set := nodes[0].ValidatorSet()

	cl := client.New(nodes[0].APIURL())
	var certs []*consensus.Certificate
	var outputs []string
	var failures []string
	for i, s := range demoSamples {
		cert, err := demoOne(ctx, w, cl, set, i, s)
		if err != nil {
			return err
		}
		if cert.Status != s.want {
			failures = append(failures, fmt.Sprintf("sample %d (%s): got %s, want %s", i+1, s.title, cert.Status, s.want))
		}
		certs = append(certs, cert)
		outputs = append(outputs, s.output)
	}
	cert, output, err := demoGenerate(ctx, w, cl, set, gen.Name())
	if err != nil {
		return err
	}
	if cert.Status != consensus.StatusRejected {
		failures = append(failures, fmt.Sprintf("generate: got %s, want rejected", cert.Status))
	}
	certs = append(certs, cert)
	outputs = append(outputs, output)

	if err := verifyOffline(w, set, certs, outputs); err != nil {
		return err
	}
	if len(failures) > 0 {
		return errors.New("unexpected outcomes:\n  " + strings.Join(failures, "\n  "))
	}
	fmt.Fprintln(w, "\nEvery answer was provisional first and proven later; anyone can check each")
	fmt.Fprintln(w, "certificate with `verity cert verify --genesis genesis.json cert.json`.")
	if !c.Bool("serve") {
		fmt.Fprintln(w, "Run `verity demo --serve` to see these jobs in the explorer, in a browser.")
		return nil
	}
	return serveExplorer(c.Context, w, nodes[0].APIURL())
}

// startDemoNetwork starts n validators with their stores in dir, node0
// answering prompts with gen, and prints them.
func startDemoNetwork(ctx context.Context, w io.Writer, n int, dir string, gen node.Generator) (*testnet.Network, error) {
	fmt.Fprintf(w, "Starting %d validators on 127.0.0.1 (real libp2p, secp256k1 keys)...\n", n)
	t0 := time.Now()
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{Nodes: n, APIs: true, Dir: dir,
		Options: func(i int, o *node.Options) {
			if i == 0 {
				o.Generator = gen
			}
		}})
	if err != nil {
		return nil, fmt.Errorf("start network: %w", err)
	}
	nodes := net.Nodes()
	set := nodes[0].ValidatorSet()
	for _, nd := range nodes {
		fmt.Fprintf(w, "  %-6s %s  peer %s  api %s\n", nd.Name(), shortID(nd.Address().Hex()), shortID(nd.PeerID().String()), nd.APIURL())
	}
	fmt.Fprintf(w, "mesh ready in %s; network %d, genesis %s\n\n", roundDuration(time.Since(t0)), set.NetworkID(), shortID(set.GenesisHash().Hex()))
	return net, nil
}

// demoGenerate is Verified Generate: the gateway's model (named model)
// answers a prompt, the network proves the answer. It returns the
// certificate and the answer.
func demoGenerate(ctx context.Context, w io.Writer, cl *client.Client, set *consensus.ValidatorSet, model string) (*consensus.Certificate, string, error) {
	fmt.Fprintf(w, "[generate] %q\n", demoPrompt)
	start := time.Now()
	job, err := cl.Generate(ctx, api.GenerateRequest{Prompt: demoPrompt})
	if err != nil {
		return nil, "", fmt.Errorf("generate: %w", err)
	}
	fmt.Fprintf(w, "  %9s  provisional answer from %s:\n", since(start), model)
	for _, l := range wrapText(strconv.Quote(job.Output), demoWidth-13) {
		fmt.Fprintf(w, "             %s\n", l)
	}
	cert, err := cl.Await(ctx, job.JobID, set, client.AwaitOptions{Output: []byte(job.Output)})
	if err != nil {
		return nil, "", fmt.Errorf("await generated answer: %w", err)
	}
	fmt.Fprintf(w, "  %9s  certificate verified: %d ballots\n", since(start), len(cert.Ballots))
	for _, c := range cert.Claims {
		fmt.Fprintln(w, fitWidth(fmt.Sprintf("    %-9s %s", c.Verdict, c.Text), demoWidth))
	}
	fmt.Fprintf(w, "  => %s: the network caught the hallucinated claim; the rest is verified\n\n", strings.ToUpper(string(cert.Status)))
	return cert, job.Output, nil
}

// verifyOffline verifies every certificate against the validator set
// alone, with the output it certifies.
func verifyOffline(w io.Writer, set *consensus.ValidatorSet, certs []*consensus.Certificate, outputs []string) error {
	p := set.Policy()
	fmt.Fprintf(w, "Offline check: verifying %d certificates against the genesis alone\n", len(certs))
	fmt.Fprintf(w, "(its policy: safe while byzantine stake is below %s of the total)...\n", p.ByzantineBelow)
	for i, cert := range certs {
		if err := consensus.VerifyCertificate(cert, set, []byte(outputs[i])); err != nil {
			return fmt.Errorf("certificate %d failed offline verification: %w", i+1, err)
		}
		fmt.Fprintf(w, "  %s  %-10s final (%d ballots and the gateway's signature)\n", shortID(cert.JobID.Hex()), cert.Status, len(cert.Ballots))
	}
	return nil
}

// serveExplorer prints the explorer's address and keeps the network up
// until Ctrl-C (or SIGTERM).
func serveExplorer(ctx context.Context, w io.Writer, apiURL string) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(w, "\nExplorer: %s/\n", apiURL)
	fmt.Fprintln(w, "(node0's; every node serves one). Serving until Ctrl-C.")
	<-ctx.Done()
	stop() // a second Ctrl-C now ends the process at once
	fmt.Fprintln(w, "stopping the network...")
	return nil
}

func demoOne(ctx context.Context, w io.Writer, cl *client.Client, set *consensus.ValidatorSet, i int, s demoSample) (*consensus.Certificate, error) {
	fmt.Fprintf(w, "[%d/%d] %s\n", i+1, len(demoSamples), s.title)
	for _, l := range wrapText(strconv.Quote(s.output), demoWidth-2) {
		fmt.Fprintf(w, "  %s\n", l)
	}
	start := time.Now()
	job, err := cl.Submit(ctx, api.VerifyRequest{Output: s.output})
	if err != nil {
		return nil, fmt.Errorf("submit sample %d: %w", i+1, err)
	}
	// The node's event stream shows the proof forming. Every line of the
	// timeline is timed by the node's event, in the stream's order, so it
	// never goes backwards: ballots may reach the node before the answer
	// to the submission reaches this client.
	events, errc := cl.Watch(ctx, job.JobID)
	for e := range events {
		at := "+" + roundDuration(max(e.Time.Sub(start), 0)).String()
		data, err := e.DecodeData()
		if err != nil {
			fmt.Fprintf(w, "  %9s  %s (malformed event: %v)\n", at, e.Type, err)
			continue
		}
		switch d := data.(type) {
		case *api.JobAcceptedData:
			fmt.Fprintf(w, "  %9s  provisional: job %s, %d claims, not proven yet\n", at, shortID(job.JobID.Hex()), len(job.Claims))
		case *api.BallotAttachedData:
			fmt.Fprintf(w, "  %9s  ballot attached from %s: %s\n", at, d.Name, strings.Join(verdictList(d), " "))
		case *api.ClaimDecidedData:
			if d.Outcome == consensus.OutcomeUndecided {
				fmt.Fprintf(w, "  %9s  claim %d undecided: no verdict can reach quorum\n", at, d.Index)
			} else {
				fmt.Fprintf(w, "  %9s  claim %d decided %s (%s)\n", at, d.Index, d.Outcome, votesText(*d))
			}
		case *api.CertificateIssuedData:
			fmt.Fprintf(w, "  %9s  certificate issued by the gateway\n", at)
		}
	}
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("watch sample %d: %w", i+1, err)
	}
	cert, err := cl.Await(ctx, job.JobID, set, client.AwaitOptions{Output: []byte(s.output)})
	if err != nil {
		return nil, fmt.Errorf("await sample %d: %w", i+1, err)
	}
	fmt.Fprintf(w, "  %9s  certificate verified by the client: %d ballots, quorum %s\n", since(start), len(cert.Ballots), cert.Quorum)
	for _, c := range cert.Claims {
		fmt.Fprintln(w, fitWidth(fmt.Sprintf("    %-9s %7s stake  %s", c.Verdict, fmt.Sprintf("%d/%d", c.StakeFor, c.StakeTotal), c.Text), demoWidth))
	}
	fmt.Fprintf(w, "  => %s\n\n", strings.ToUpper(string(cert.Status)))
	return cert, nil
}

// demoWidth is the demo's line width: it fits an 80-column terminal.
const demoWidth = 79

// wrapText breaks s at spaces into lines of at most width runes (a word
// longer than width is cut).
func wrapText(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		switch {
		case line == "":
			line = word
		case runeLen(line)+1+runeLen(word) <= width:
			line += " " + word
		default:
			lines = append(lines, fitWidth(line, width))
			line = word
		}
	}
	if line != "" {
		lines = append(lines, fitWidth(line, width))
	}
	return lines
}

func since(t time.Time) string {
	return "+" + roundDuration(time.Since(t)).String()
}

func shortID(s string) string {
	if len(s) <= 14 {
		return s
	}
	return s[:8] + "…" + s[len(s)-4:]
}
