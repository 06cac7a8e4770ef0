package main

import (
	"context"
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
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "api", Usage: "node API URL", Value: "http://127.0.0.1:27600", EnvVars: []string{"VERITY_API"}},
			&cli.BoolFlag{Name: "json", Usage: "print each event as one JSON line"},
			&cli.DurationFlag{Name: "timeout", Usage: "give up after this long", Value: 10 * time.Minute},
		},
		Action: func(c *cli.Context) error {
			id, err := parseHashArg(c.Args().First())
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
			defer cancel()
			events, errc := client.New(c.String("api")).Watch(ctx, id)
			for e := range events {
				if c.Bool("json") {
					printJSONLine(c.App.Writer, e)
				} else {
					fmt.Fprintln(c.App.Writer, describeEvent(e))
				}
			}
			return <-errc
		},
	})
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
		return fmt.Sprintf("%s  claim %d decided: %s (true %d, false %d, needed %s)", ts, d.Index, d.Outcome, d.StakeTrue, d.StakeFalse, neededText(*d))
	case *api.JobExpiredData:
		return fmt.Sprintf("%s  deadline passed; undecided claims %v", ts, d.Undecided)
	case *api.CertificateIssuedData:
		return fmt.Sprintf("%s  certificate issued: %s", ts, strings.ToUpper(string(d.Status)))
	}
	return fmt.Sprintf("%s  %s", ts, e.Type)
}

// progressView renders the proof forming: on a terminal, one live line per
// claim redrawn in place; elsewhere, one plain line per event.
type progressView struct {
	w      io.Writer
	tty    bool
	texts  []string
	drawn  int
	claims []consensus.ClaimProgress
}

// isTerminal reports whether f is a terminal: a character device that
// answers the terminal ioctl (/dev/null is a character device too, but no
// terminal).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func (p *progressView) event(e api.Event) {
	if !p.tty {
		fmt.Fprintln(p.w, describeEvent(e))
		return
	}
	if d, err := e.DecodeData(); err == nil {
		if b, ok := d.(*api.BallotAttachedData); ok && b.Progress != nil {
			p.claims = b.Progress
		}
	}
	p.redraw()
}

func (p *progressView) redraw() {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	}
	p.drawn = 0
	for i, c := range p.claims {
		text := ""
		if i < len(p.texts) {
			text = p.texts[i]
		}
		if r := []rune(text); len(r) > 48 {
			text = string(r[:47]) + "…"
		}
		state := string(c.Outcome)
		fmt.Fprintf(p.w, "\x1b[2K  claim %d %-50s true %d  false %d  abstain %d  / needed %s  [%s] %d ballots\n",
			c.Index, text, c.StakeTrue, c.StakeFalse, c.StakeAbstain, neededText(c), state, len(c.Voters))
		p.drawn++
	}
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
