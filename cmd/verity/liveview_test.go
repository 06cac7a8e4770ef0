//go:build linux

package main

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/testnet"
)

// vtScreen is as much of a terminal as the live view uses: printable
// characters with automatic wrap at the right margin, carriage return, line
// feed, cursor up (CSI n A, bounded by the top of the visible screen) and
// erase in line (CSI K, CSI 2K). Other escape sequences are skipped.
type vtScreen struct {
	width, height int
	rows          [][]rune
	row, col      int
	maxRow        int
	// wraps counts characters that did not fit on their row: a line wider
	// than the terminal.
	wraps int
}

func newScreen(width, height int) *vtScreen { return &vtScreen{width: width, height: height} }

func (s *vtScreen) ensure() {
	for len(s.rows) <= s.row {
		s.rows = append(s.rows, make([]rune, s.width))
	}
	s.maxRow = max(s.maxRow, s.row)
}

func (s *vtScreen) write(text string) {
	r := []rune(text)
	for i := 0; i < len(r); i++ {
		switch c := r[i]; {
		case c == '\r':
			s.col = 0
		case c == '\n':
			s.row++
			s.ensure()
		case c == 0x1b && i+1 < len(r) && r[i+1] == '[':
			j := i + 2
			for j < len(r) && (r[j] >= '0' && r[j] <= '9' || r[j] == ';' || r[j] == '?') {
				j++
			}
			if j == len(r) {
				return
			}
			param := string(r[i+2 : j])
			n, err := strconv.Atoi(param)
			if err != nil {
				n = 0
			}
			s.ensure()
			switch r[j] {
			case 'A':
				top := max(0, s.maxRow-s.height+1)
				s.row = max(top, s.row-max(n, 1))
			case 'K':
				from := s.col
				if n == 2 {
					from = 0
				}
				for k := from; k < s.width; k++ {
					s.rows[s.row][k] = 0
				}
			}
			i = j
		case c < 0x20:
		default:
			if s.col >= s.width {
				s.wraps++
				s.col = 0
				s.row++
			}
			s.ensure()
			s.rows[s.row][s.col] = c
			s.col++
		}
	}
}

// lines is the screen's text, trailing blanks trimmed.
func (s *vtScreen) lines() []string {
	out := make([]string, len(s.rows))
	for i, row := range s.rows {
		out[i] = strings.TrimRight(strings.Map(func(r rune) rune {
			if r == 0 {
				return ' '
			}
			return r
		}, string(row)), " ")
	}
	return out
}

// TestScreenEmulation: the emulation itself wraps, moves up and erases as
// a terminal does, so that the live view tests can fail.
func TestScreenEmulation(t *testing.T) {
	s := newScreen(10, 5)
	s.write("0123456789ab\r\n")
	if s.wraps != 1 || s.lines()[1] != "ab" {
		t.Fatalf("wrap: %d wraps, %q", s.wraps, s.lines())
	}
	s.write("first\r\nsecond\r\n\x1b[2A\r\x1b[2Kx\r\n")
	if got := s.lines()[2:4]; got[0] != "x" || got[1] != "second" {
		t.Fatalf("cursor up and erase: %q", got)
	}
	// A line redrawn over a longer one without erasing keeps the tail:
	// the "ballotsots" the live view once left.
	s = newScreen(40, 5)
	s.write("3 ballots\r\n\x1b[1A\r2 ballots\r\n")
	s.write("\x1b[1A\rballots\r\n")
	if got := s.lines()[0]; got != "ballotsts" {
		t.Fatalf("overwrite without erase: %q", got)
	}
}

// liveLine is one claim's live line: the index, the outcome, the votes in
// the count quorum's unit, and the claim's text, cut with "…" if need be.
var liveLine = regexp.MustCompile(`^  (\d+) \[(pending|true|false|undecided)\] +(no ballot yet|true \d+ false \d+ \(needs \d+ of \d+ validators\))(  .+)?$`)

// TestLiveViewFitsTerminal runs submit on a pseudo-terminal of 80 and of
// 120 columns against a network whose fourth validator is slow, with a
// quorum that needs all four, so the view is redrawn while it waits. The
// screen, played back through a terminal emulation, must show each claim
// once, on a line that fits, with nothing left over from earlier draws,
// and the time waited against the job's deadline.
func TestLiveViewFitsTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds verity and runs a network")
	}
	bin := buildVerity(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	slow, err := testnet.Behaviour{Kind: testnet.BehaviourSlow, Delay: 1500 * time.Millisecond}.Policy()
	if err != nil {
		t.Fatal(err)
	}
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{Nodes: 4, APIs: true, Dir: t.TempDir(),
		Options: func(i int, o *node.Options) {
			if i == 3 {
				o.Ballots = slow
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	apiURL := net.Nodes()[0].APIURL()
	text := "Paris is the capital of France and Berlin is the capital of Germany. The Sun orbits the Earth."
	for _, cols := range []int{80, 120} {
		t.Run(strconv.Itoa(cols)+" columns", func(t *testing.T) {
			cmd := exec.CommandContext(ctx, bin, "submit", "--api", apiURL, "--quorum", "4of4", "--text", text)
			f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(cols), Rows: 24})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			raw, _ := io.ReadAll(f) // ends with EIO once the command has exited
			err = cmd.Wait()
			var ee *exec.ExitError
			if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != exitRejected) {
				t.Fatalf("submit: %v\n%s", err, raw)
			}
			s := newScreen(cols, 24)
			s.write(string(raw))
			screen := s.lines()
			if s.wraps > 0 {
				t.Errorf("%d characters did not fit in %d columns:\n%s", s.wraps, cols, strings.Join(screen, "\n"))
			}
			seen := map[string]int{}
			for _, l := range screen {
				if !strings.HasPrefix(l, "  ") || !strings.Contains(l, " [") {
					continue
				}
				m := liveLine.FindStringSubmatch(l)
				if m == nil {
					t.Errorf("garbled live line %q", l)
					continue
				}
				seen[m[1]]++
				if m[2] == "pending" {
					t.Errorf("claim %s still pending on the final screen: %q", m[1], l)
				}
			}
			for _, i := range []string{"0", "1", "2"} {
				if seen[i] != 1 {
					t.Errorf("claim %s's live line appears %d times on the screen, want once:\n%s", i, seen[i], strings.Join(screen, "\n"))
				}
			}
			if len(seen) != 3 {
				t.Errorf("live lines for claims %v, want 0, 1 and 2", seen)
			}
			waited := regexp.MustCompile(`^  waited \d+(\.\d)?m?s of the job's [0-9.ms]+ deadline$`)
			if !hasLine(screen, waited) {
				t.Errorf("no final waited line:\n%s", strings.Join(screen, "\n"))
			}
			// The time given is said to be since submission.
			final := regexp.MustCompile(`^certificate verified \(4 validators\): REJECTED, final [0-9.]+(µs|ms|s) after submission$`)
			if !hasLine(screen, final) {
				t.Errorf("no final line saying what its time is:\n%s", strings.Join(screen, "\n"))
			}
			// While the slow validator held the proof back, the time waited
			// was redrawn as it passed.
			if n := len(regexp.MustCompile(`waiting \d+(\.\d)?m?s of the job's`).FindAllString(string(raw), -1)); n < 3 {
				t.Errorf("the waiting line was drawn %d times, want it redrawn while waiting", n)
			}
		})
	}
}

func hasLine(lines []string, re *regexp.Regexp) bool {
	for _, l := range lines {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}
