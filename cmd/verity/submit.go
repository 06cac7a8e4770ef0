package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/consensus"
)

// Exit codes of submit.
const (
	exitVerified    = 0
	exitRejected    = 3
	exitUnresolved  = 4
	exitProvisional = 5
)

func init() {
	register(&cli.Command{
		Name:      "generate",
		Usage:     "ask a node to answer a prompt, then wait for the network to prove the answer",
		ArgsUsage: "PROMPT",
		Description: `The node's generator answers the prompt; the answer is provisional until
the network's certificate, which this command waits for and verifies.
Exit codes as for submit.`,
		Flags: append(jobFlags(), &cli.StringFlag{Name: "model", Usage: "the node's generator model"}),
		Action: func(c *cli.Context) error {
			prompt := strings.Join(c.Args().Slice(), " ")
			if strings.TrimSpace(prompt) == "" {
				return errors.New("give a prompt: verity generate --api URL \"question\"")
			}
			replication, deadlineMS := jobOptions(c)
			req := api.GenerateRequest{Prompt: prompt, Model: c.String("model"), Quorum: c.String("quorum"),
				Replication: replication, DeadlineMS: deadlineMS}
			return submitAndWait(c, func(ctx context.Context, cl *client.Client) (*api.Job, error) { return cl.Generate(ctx, req) })
		},
	})
	register(&cli.Command{
		Name:      "submit",
		Usage:     "submit an output for verification and wait for its certificate",
		ArgsUsage: "[-]",
		Description: `Sends an output to a node, prints the provisional answer, then waits for the
certificate, verifies it against the validator set and prints the final status.

Exit codes: 0 verified, 3 rejected, 4 unresolved, 5 still provisional at
--timeout (or with --no-wait), 1 any error.`,
		Flags: append(jobFlags(),
			&cli.StringFlag{Name: "text", Usage: "the output text"},
			&cli.StringFlag{Name: "file", Usage: "read the output from `FILE`"},
			&cli.StringFlag{Name: "prompt", Usage: "the prompt that produced the output"},
		),
		Action: runSubmit,
	})
}

func readOutput(c *cli.Context) (string, error) {
	sources := 0
	for _, set := range []bool{c.IsSet("text"), c.IsSet("file"), c.Args().First() == "-"} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return "", errors.New("give the output exactly once: --text T, --file F, or - for standard input")
	}
	switch {
	case c.IsSet("text"):
		return c.String("text"), nil
	case c.IsSet("file"):
		data, err := os.ReadFile(c.String("file"))
		return string(data), err
	default:
		data, err := io.ReadAll(c.App.Reader)
		return string(data), err
	}
}

// validatorSet is --genesis when given, else the node's (checked against its
// own stated genesis hash).
func validatorSet(ctx context.Context, c *cli.Context, cl *client.Client) (*consensus.ValidatorSet, error) {
	if path := c.String("genesis"); path != "" {
		g, err := consensus.LoadGenesis(path)
		if err != nil {
			return nil, err
		}
		return g.ValidatorSet()
	}
	return cl.Validators(ctx)
}

// jobFlags are the consensus parameters submit and generate share.
func jobFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "api", Usage: "node API URL", Value: "http://127.0.0.1:27600", EnvVars: []string{"VERITY_API"}},
		&cli.StringFlag{Name: "quorum", Usage: "quorum rule: num/den of stake (e.g. 2/3) or NofM validators"},
		&cli.IntFlag{Name: "replication", Usage: "validators per claim (0 = all)", Value: -1, DefaultText: "the node's"},
		&cli.DurationFlag{Name: "deadline", Usage: "job deadline", DefaultText: "the node's"},
		&cli.StringFlag{Name: "genesis", Usage: "verify against this genesis.json instead of the node's validator set"},
		&cli.BoolFlag{Name: "no-wait", Usage: "return after the provisional answer (exit 5)"},
		&cli.DurationFlag{Name: "timeout", Usage: "how long to wait for the certificate", Value: 2 * time.Minute},
		&cli.StringFlag{Name: "out", Usage: "save the certificate to `FILE`"},
		&cli.BoolFlag{Name: "json", Usage: "print machine-readable JSON"},
	}
}

// jobOptions reads --replication (absent when negative: the node's
// default) and --deadline (0: the node's default).
func jobOptions(c *cli.Context) (replication *uint32, deadlineMS int64) {
	if r := c.Int("replication"); r >= 0 {
		rr := uint32(r)
		replication = &rr
	}
	return replication, c.Duration("deadline").Milliseconds()
}

func runSubmit(c *cli.Context) error {
	output, err := readOutput(c)
	if err != nil {
		return err
	}
	replication, deadlineMS := jobOptions(c)
	req := api.VerifyRequest{Output: output, Prompt: c.String("prompt"), Quorum: c.String("quorum"),
		Replication: replication, DeadlineMS: deadlineMS}
	return submitAndWait(c, func(ctx context.Context, cl *client.Client) (*api.Job, error) { return cl.Submit(ctx, req) })
}

// submitAndWait sends a job, prints the provisional answer, then (unless
// --no-wait) waits for the certificate, verifies it and exits by status.
func submitAndWait(c *cli.Context, send func(context.Context, *client.Client) (*api.Job, error)) error {
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	cl := client.New(c.String("api"))
	set, err := validatorSet(ctx, c, cl)
	if err != nil {
		return fmt.Errorf("validator set: %w", err)
	}
	warnNotReady(ctx, c, cl)
	start := time.Now()
	job, err := send(ctx, cl)
	if err != nil {
		return err
	}
	w := c.App.Writer
	jsonOut := c.Bool("json")
	if jsonOut {
		printJSONLine(w, map[string]any{"event": "provisional", "job_id": job.JobID, "status": job.Status, "output_hash": job.OutputHash, "output": job.Output, "claims": job.Claims})
	} else {
		fmt.Fprintf(w, "job %s\n  accepted: status provisional (not proven yet)\n", job.JobID.Hex())
		if job.Prompt != "" {
			fmt.Fprintf(w, "  answer: %s\n", job.Output)
		}
		for _, cl := range job.Claims {
			fmt.Fprintf(w, "  claim %d: %s\n", cl.Index, cl.Text)
		}
	}
	if c.Bool("no-wait") {
		return exitCode(exitProvisional, errors.New(""))
	}
	if !jsonOut {
		fmt.Fprintf(c.App.ErrWriter, "waiting for the certificate (up to %s)...\n", c.Duration("timeout"))
	}
	stopWatch := watchProgress(ctx, c, cl, job, start, jsonOut)
	cert, err := cl.Await(ctx, job.JobID, set, client.AwaitOptions{Output: []byte(job.Output)})
	stopWatch()
	if errors.Is(err, context.DeadlineExceeded) {
		if jsonOut {
			printJSONLine(w, map[string]any{"event": "timeout", "job_id": job.JobID, "status": consensus.StatusProvisional})
		}
		return exitCode(exitProvisional, fmt.Errorf("job %s still provisional after %s", job.JobID.Hex(), c.Duration("timeout")))
	}
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if path := c.String("out"); path != "" {
		if err := writeJSONFile(path, cert); err != nil {
			return err
		}
	}
	if jsonOut {
		printJSONLine(w, map[string]any{"event": "final", "job_id": cert.JobID, "status": cert.Status, "verified_offline": true, "elapsed_ms": float64(elapsed.Microseconds()) / 1000, "certificate": cert})
	} else {
		printCertificateSummary(w, cert)
		fmt.Fprintf(w, "certificate verified (%d validators): %s, final %s after submission\n", set.Len(), strings.ToUpper(string(cert.Status)), roundDuration(elapsed))
	}
	return statusExit(cert.Status)
}

// warnNotReady says at once, before the job is sent, when the node reports
// that it is not ready (no gossip peers): no other validator would hear of
// the job, so it would wait out its deadline and end unresolved.
func warnNotReady(ctx context.Context, c *cli.Context, cl *client.Client) {
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := cl.Health(hctx)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		return
	}
	fmt.Fprintf(c.App.ErrWriter, "warning: the node at %s is not ready (%s):\n", c.String("api"), ae.Message)
	fmt.Fprintln(c.App.ErrWriter, "  other validators will not hear of the job, which cannot reach quorum")
	fmt.Fprintln(c.App.ErrWriter, "  without them and may end unresolved at its deadline")
}

func statusExit(s consensus.Status) error {
	switch s {
	case consensus.StatusVerified:
		return nil
	case consensus.StatusRejected:
		return exitCode(exitRejected, errors.New(""))
	case consensus.StatusUnresolved:
		return exitCode(exitUnresolved, errors.New(""))
	}
	return exitCode(exitProvisional, errors.New(""))
}

func printCertificateSummary(w io.Writer, c *consensus.Certificate) {
	for _, cl := range c.Claims {
		fmt.Fprintf(w, "  %-9s claim %d: %s (stake %d of %d)\n", cl.Verdict, cl.Index, cl.Text, cl.StakeFor, cl.StakeTotal)
	}
	fmt.Fprintf(w, "  %d ballots, quorum %s\n", len(c.Ballots), c.Quorum)
}

func printJSONLine(w io.Writer, v any) {
	data, _ := json.Marshal(v)
	fmt.Fprintln(w, string(data))
}

func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d > time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}

// watchProgress shows the proof forming while submit waits: live lines per
// claim on a terminal, with the time waited redrawn as it passes; plain
// lines in a pipe; JSON events with --json. The returned function stops it
// and waits for it.
func watchProgress(ctx context.Context, c *cli.Context, cl *client.Client, job *api.Job, start time.Time, jsonOut bool) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	texts := make([]string, len(job.Claims))
	for i, cl := range job.Claims {
		texts[i] = cl.Text
	}
	view := &progressView{w: c.App.Writer, texts: texts, start: start, deadline: job.Deadline, timeout: c.Duration("timeout")}
	if f, ok := c.App.ErrWriter.(*os.File); ok && isTerminal(f) && !jsonOut {
		view.w, view.tty, view.width = f, true, terminalWidth(f)
		view.claims = pendingClaims(job)
		view.redraw()
	}
	events, _ := cl.Watch(ctx, job.JobID)
	go func() {
		defer close(done)
		var tick <-chan time.Time
		if view.tty {
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case e, ok := <-events:
				if !ok {
					return
				}
				if jsonOut {
					printJSONLine(c.App.Writer, map[string]any{"event": e.Type, "id": e.ID, "job_id": e.JobID, "time": e.Time, "data": e.Data})
					continue
				}
				view.event(e)
			case <-tick:
				view.redraw()
			}
		}
	}()
	return func() {
		// Let the stream deliver up to the certificate event, briefly.
		select {
		case <-done:
		case <-time.After(200 * time.Millisecond):
		}
		cancel()
		<-done
		if view.tty {
			view.finished = true
			view.redraw()
		}
	}
}

// pendingClaims is every claim of job before any ballot: the job's own
// progress when it has one, else nothing attached yet.
func pendingClaims(job *api.Job) []consensus.ClaimProgress {
	if len(job.Progress) == len(job.Claims) {
		return slices.Clone(job.Progress)
	}
	out := make([]consensus.ClaimProgress, len(job.Claims))
	for i, c := range job.Claims {
		out[i] = consensus.ClaimProgress{Index: c.Index, Outcome: consensus.OutcomePending}
	}
	return out
}
