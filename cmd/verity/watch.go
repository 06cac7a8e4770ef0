package main

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/urfave/cli/v2"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/consensus"
)

func init() {
	register(&cli.Command{
		Name:      "watch",
		Usage:     "stream a job's events until its certificate is issued",
		ArgsUsage: "JOB_ID",
		Description: `Prints each event of the job as the node reports it (with --json, one JSON
object per line), from the job's first event, until the certificate is
issued. It fails at once when the node does not answer or does not know
the job. The status is the node's word: check the certificate itself with
verity cert verify.

Exit codes, as for submit: 0 verified, 3 rejected, 4 unresolved, 5 still
provisional at --timeout, 1 any error (the node did not answer, the job is
unknown).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "api", Usage: "node API URL", Value: "http://127.0.0.1:27600", EnvVars: []string{"VERITY_API"}},
			&cli.BoolFlag{Name: "json", Usage: "print each event as one JSON line"},
			&cli.DurationFlag{Name: "timeout", Usage: "give up after this long", Value: 10 * time.Minute},
		},
		Action: runWatch,
	})
}

func runWatch(c *cli.Context) error {
	id, err := parseHashArg(c.Args().First())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	base := c.String("api")
	cl := client.New(base)
	// One plain request first: a node that is down, or that does not know
	// the job, is an error now, not a stream retried until --timeout.
	checkCtx, cancelCheck := context.WithTimeout(ctx, 10*time.Second)
	_, err = cl.Certificate(checkCtx, id)
	cancelCheck()
	var ae *client.APIError
	switch {
	case errors.As(err, &ae):
		return fmt.Errorf("node at %s: %w", base, err)
	case err != nil && !errors.Is(err, client.ErrNotFinal):
		return fmt.Errorf("the node at %s did not answer: %w", base, err)
	}
	events, errc := cl.Watch(ctx, id)
	var status consensus.Status
	for e := range events {
		if c.Bool("json") {
			printJSONLine(c.App.Writer, e)
		} else {
			fmt.Fprintln(c.App.Writer, describeEvent(e))
		}
		if data, err := e.DecodeData(); err == nil {
			if d, ok := data.(*api.CertificateIssuedData); ok {
				status = d.Status
			}
		}
	}
	if err := <-errc; errors.Is(err, context.DeadlineExceeded) {
		return exitCode(exitProvisional, fmt.Errorf("job %s still provisional after %s", id.Hex(), c.Duration("timeout")))
	} else if err != nil {
		return err
	}
	return statusExit(status)
}

func parseHashArg(s string) (common.Hash, error) {
	var h common.Hash
	if len(s) != 66 || !strings.HasPrefix(s, "0x") {
		return h, fmt.Errorf("job id %q: want 0x and 64 hex digits", s)
	}
	err := h.UnmarshalText([]byte(s))
	return h, err
}

// describeEvent is one plain line for a person. An event whose data cannot
// be read (the node's events are input, not trusted) says so.
func describeEvent(e api.Event) string {
	ts := e.Time.Format("15:04:05.000")
	data, err := e.DecodeData()
	if err != nil {
		return fmt.Sprintf("%s  %s (malformed event: %v)", ts, e.Type, err)
	}
	switch d := data.(type) {
	case *api.JobAcceptedData:
		return fmt.Sprintf("%s  job accepted (provisional)", ts)
	case *api.ClaimsExtractedData:
		return fmt.Sprintf("%s  %d claims extracted", ts, len(d.Claims))
	case *api.BallotAttachedData:
		vs := verdictList(d)
		return fmt.Sprintf("%s  ballot from %s (%s): %s", ts, d.Name, shortID(d.Validator.Hex()), strings.Join(vs, " "))
	case *api.ClaimDecidedData:
		return fmt.Sprintf("%s  claim %d decided: %s (%s)", ts, d.Index, d.Outcome, votesText(*d))
	case *api.JobExpiredData:
		return fmt.Sprintf("%s  deadline passed; undecided claims %v", ts, d.Undecided)
	case *api.CertificateIssuedData:
		return fmt.Sprintf("%s  certificate issued: %s", ts, strings.ToUpper(string(d.Status)))
	}
	return fmt.Sprintf("%s  %s", ts, e.Type)
}

// progressView renders the proof forming: on a terminal, one live line per
// claim and a line with the time waited, redrawn in place and each cut to
// the terminal's width (a line that wrapped would take two rows, and the
// redraw, which moves up one row per line, would leave pieces behind);
// elsewhere, one plain line per event.
type progressView struct {
	w      io.Writer
	tty    bool
	width  int // columns of the terminal
	texts  []string
	drawn  int
	claims []consensus.ClaimProgress
	// start is when the job was sent; deadline is the job's deadline and
	// timeout how long the command waits at most.
	start    time.Time
	deadline time.Time
	timeout  time.Duration
	now      func() time.Time
	// finished: the wait is over; the last redraw says how long it took.
	finished bool
}

// isTerminal reports whether f is a terminal: a character device that
// answers the terminal ioctl (/dev/null is a character device too, but no
// terminal).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// terminalWidth is f's width in columns, 80 when the terminal does not say.
func terminalWidth(f *os.File) int {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 80
	}
	return int(ws.Col)
}

func (p *progressView) event(e api.Event) {
	if !p.tty {
		fmt.Fprintln(p.w, describeEvent(e))
		return
	}
	if data, err := e.DecodeData(); err == nil {
		switch d := data.(type) {
		case *api.BallotAttachedData:
			if d.Progress != nil {
				p.claims = d.Progress
			}
		case *api.ClaimDecidedData:
			if int(d.Index) < len(p.claims) {
				p.claims[d.Index] = *d
			}
		}
	}
	p.redraw()
}

// redraw draws the claim lines and the waiting line over the previous ones.
func (p *progressView) redraw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	lines := p.lines()
	for _, l := range lines {
		b.WriteString("\r\x1b[2K")
		b.WriteString(l)
		b.WriteString("\n")
	}
	p.drawn = len(lines)
	io.WriteString(p.w, b.String())
}

// lines are the view's lines, none wider than the terminal minus one
// column (writing the last column leaves some terminals about to wrap).
func (p *progressView) lines() []string {
	limit := max(p.width-1, 20)
	var out []string
	for i, c := range p.claims {
		votes := fmt.Sprintf("true %d false %d (needs %s)", c.ValidatorsTrue, c.ValidatorsFalse, neededText(c))
		if c.NeededUnit != "validators" {
			votes = fmt.Sprintf("true %d false %d (needs %s) %d ballots", c.StakeTrue, c.StakeFalse, neededText(c), len(c.Voters))
		}
		if c.Needed == 0 && c.StakeAssigned == 0 {
			votes = "no ballot yet"
		}
		head := fmt.Sprintf("  %d %-9s %s", c.Index, "["+string(c.Outcome)+"]", votes)
		if i < len(p.texts) && runeLen(head)+4 < limit {
			head += "  " + p.texts[i]
		}
		out = append(out, fitWidth(head, limit))
	}
	now := time.Now
	if p.now != nil {
		now = p.now
	}
	// Tenths of a second while it counts up; a proof that came at once
	// says in how many milliseconds.
	elapsed := now().Sub(p.start)
	if elapsed >= time.Second {
		elapsed = elapsed.Truncate(100 * time.Millisecond)
	} else {
		elapsed = elapsed.Round(time.Millisecond)
	}
	wait := fmt.Sprintf("  waiting %s", elapsed)
	if p.finished {
		wait = fmt.Sprintf("  waited %s", elapsed)
	}
	if !p.deadline.IsZero() {
		wait += fmt.Sprintf(" of the job's %s deadline", p.deadline.Sub(p.start).Round(100*time.Millisecond))
	}
	if p.timeout > 0 && !p.finished {
		wait += fmt.Sprintf(" (giving up after %s)", p.timeout)
	}
	return append(out, fitWidth(wait, limit))
}

// fitWidth cuts s to at most n columns, ending in "…" when cut.
func fitWidth(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func runeLen(s string) int { return len([]rune(s)) }

// votesText is where a claim stands in the quorum's own unit: stake for a
// stake quorum ("true 300, false 0, needed 267 of 400 stake"), validators
// for a count quorum ("true 3, false 0, needed 4 of 4 validators").
func votesText(c consensus.ClaimProgress) string {
	if c.NeededUnit == "validators" {
		return fmt.Sprintf("true %d, false %d, needed %s", c.ValidatorsTrue, c.ValidatorsFalse, neededText(c))
	}
	return fmt.Sprintf("true %d, false %d, needed %s", c.StakeTrue, c.StakeFalse, neededText(c))
}

// neededText says what a verdict needs: "267 of 400 stake" or "4 of 4
// validators".
func neededText(c consensus.ClaimProgress) string {
	if c.NeededUnit == "validators" {
		return fmt.Sprintf("%d of %d validators", c.Needed, c.ValidatorsAssigned)
	}
	return fmt.Sprintf("%d of %d stake", c.Needed, c.StakeAssigned)
}

// verdictList renders a ballot's verdicts as "0=true 1=false"; a malformed
// event (lengths that differ) shows what pairs up and says so.
func verdictList(d *api.BallotAttachedData) []string {
	n := min(len(d.ClaimIndexes), len(d.Verdicts))
	vs := make([]string, 0, n+1)
	for i := range n {
		vs = append(vs, fmt.Sprintf("%d=%s", d.ClaimIndexes[i], d.Verdicts[i]))
	}
	if len(d.ClaimIndexes) != len(d.Verdicts) {
		vs = append(vs, "(malformed event)")
	}
	return vs
}
