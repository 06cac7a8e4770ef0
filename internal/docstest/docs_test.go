package docstest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/verity-network/verity/internal/testtier"
)

// block is one runnable block of a document.
type block struct {
	file  string
	line  int    // of the opening fence
	kind  string // "sh", "background" or "transcript"
	exit  int    // sh: the last command's expected exit status
	ready string // background: what the command prints once ready
	body  []string
}

var markerRe = regexp.MustCompile(`^<!-- runnable(.*?)-->\s*$`)

// parseBlocks returns the runnable blocks of a markdown document.
func parseBlocks(file, text string) ([]block, error) {
	lines := strings.Split(text, "\n")
	var out []block
	for i := 0; i < len(lines); i++ {
		m := markerRe.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			return nil, fmt.Errorf("%s:%d: a runnable marker must come just before a fenced block", file, i+1)
		}
		b := block{file: file, line: i + 2, kind: "sh"}
		opts := strings.TrimSpace(m[1])
		switch {
		case opts == "":
		case opts == "transcript":
			b.kind = "transcript"
		case strings.HasPrefix(opts, "exit="):
			n, err := strconv.Atoi(strings.TrimPrefix(opts, "exit="))
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %q: %v", file, i+1, opts, err)
			}
			b.exit = n
		case strings.HasPrefix(opts, "background ready="):
			s, err := strconv.Unquote(strings.TrimPrefix(opts, "background ready="))
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %q: %v", file, i+1, opts, err)
			}
			b.kind, b.ready = "background", s
		default:
			return nil, fmt.Errorf("%s:%d: unknown runnable option %q", file, i+1, opts)
		}
		j := i + 2
		for ; j < len(lines) && !strings.HasPrefix(lines[j], "```"); j++ {
			b.body = append(b.body, lines[j])
		}
		if j == len(lines) {
			return nil, fmt.Errorf("%s:%d: unclosed block", file, b.line)
		}
		out = append(out, b)
		i = j
	}
	return out, nil
}

// commands splits an sh block into commands: comment-only and blank lines
// dropped, lines ending in "\" joined with the next.
func commands(body []string) []string {
	var out []string
	cur := ""
	for _, l := range body {
		if cur == "" && (strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#")) {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		out = append(out, cur+l)
		cur = ""
	}
	return out
}

// transcriptStep is one "$ command" of a transcript and the lines shown
// after it.
type transcriptStep struct {
	cmd  string
	want []string
}

func transcript(body []string) []transcriptStep {
	var out []transcriptStep
	for _, l := range body {
		if c, ok := strings.CutPrefix(l, "$ "); ok {
			out = append(out, transcriptStep{cmd: c})
			continue
		}
		if len(out) > 0 && strings.TrimSpace(l) != "" && strings.TrimSpace(l) != "..." {
			out[len(out)-1].want = append(out[len(out)-1].want, l)
		}
	}
	return out
}

// volatile is what may differ between a shown line and a printed one.
var volatile = regexp.MustCompile(`0x[0-9a-fA-F]+(…[0-9a-fA-F]+)?|\d\d:\d\d:\d\d\.\d+|16Uiu2HA\S*|\d+(\.\d+)?(µs|ms|s|m|h)(\d+(\.\d+)?(ms|s))*\b|\d+(\.\d+)?|\s+`)

// shapeOf turns a shown line into a pattern of the lines it stands for.
func shapeOf(line string) *regexp.Regexp {
	line = strings.TrimSpace(line)
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, loc := range volatile.FindAllStringIndex(line, -1) {
		b.WriteString(regexp.QuoteMeta(line[last:loc[0]]))
		tok := line[loc[0]:loc[1]]
		switch {
		case strings.HasPrefix(tok, "0x"):
			b.WriteString(`0x[0-9a-fA-F]+(…[0-9a-fA-F]+)?`)
		case strings.TrimSpace(tok) == "":
			b.WriteString(`\s+`)
		case strings.HasPrefix(tok, "16Uiu2HA"):
			b.WriteString(`\S+`)
		case strings.Count(tok, ":") == 2:
			b.WriteString(`\d\d:\d\d:\d\d\.\d+`)
		case strings.HasSuffix(tok, "s") || strings.HasSuffix(tok, "m") || strings.HasSuffix(tok, "h"):
			b.WriteString(`[0-9.]+(µs|ms|s|m|h)([0-9.]+(ms|s))*`)
		default:
			b.WriteString(`\d+(\.\d+)?`)
		}
		last = loc[1]
	}
	b.WriteString(regexp.QuoteMeta(line[last:]))
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// TestShapeOf: the comparison lets ids, times and numbers differ, and
// nothing else.
func TestShapeOf(t *testing.T) {
	for _, tc := range []struct {
		shown, printed string
		match          bool
	}{
		{"job 0x0a67…fe62: VERIFIED", "job 0x1234…abcd: VERIFIED", true},
		{"job 0x0a67…fe62: VERIFIED", "job 0x1234…abcd: REJECTED", false},
		{"06:41:20.221  +7.98ms     ballot  node0 0x83eCD9…27fD", "07:00:01.001  +1.2s  ballot  node3 0xaa…bb", true},
		{`["before proof"]`, `["before proof"]`, true},
		{`["before proof"]`, `[]`, false},
		{"reads before proof: 1; actions before proof: 1", "reads before proof: 2; actions before proof: 0", true},
		{"provisional", "final", false},
		{"  06:41:20.515  +302.24ms   read    127.0.0.1  <- BEFORE PROOF", "07:58:17.834  +1.2s   read  127.0.0.1  <- BEFORE PROOF", true},
		{"waiting for the certificate (up to 2m0s)...", "waiting for the certificate (up to 2m0s)...", true},
		{"  peer 16Uiu2HA…2mzb  api", "peer 16Uiu2HAm…x  api", true},
	} {
		if got := shapeOf(tc.shown).MatchString(strings.TrimSpace(tc.printed)); got != tc.match {
			t.Errorf("%q against %q: match %v, want %v", tc.shown, tc.printed, got, tc.match)
		}
	}
	bs, err := parseBlocks("x.md", "<!-- runnable exit=3 -->\n```sh\na \\\n b\n# c\nd\n```\n<!-- runnable transcript -->\n```text\n$ x\n1\n...\n$ echo $?\n0\n```\n")
	if err != nil || len(bs) != 2 || bs[0].exit != 3 || len(commands(bs[0].body)) != 2 || len(transcript(bs[1].body)) != 2 {
		t.Fatalf("parse: %v %+v", err, bs)
	}
	if _, err := parseBlocks("x.md", "<!-- runnable fast -->\n```sh\na\n```\n"); err == nil {
		t.Fatal("unknown option accepted")
	}
}

// session is one bash process the commands run in, one after another.
type session struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	lines chan string
}

const sentinel = "__verity_docs_step_done__"

func newSession(t *testing.T, dir string, env []string) *session {
	cmd := exec.Command("bash", "--noprofile", "--norc")
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &session{cmd: cmd, in: in, lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	fmt.Fprintln(in, "__s=0; exec 2>&1")
	return s
}

// run runs one command as typed at a prompt (with $? the status of the
// command before) and returns what it printed and its exit status.
func (s *session) run(t *testing.T, command string, timeout time.Duration) (string, int) {
	t.Helper()
	fmt.Fprintf(s.in, "(exit $__s); { %s\n} </dev/null; __s=$?; printf '\\n%s %%d\\n' $__s\n", command, sentinel)
	var out []string
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatalf("the shell ended during %q:\n%s", command, strings.Join(out, "\n"))
			}
			if rest, ok := strings.CutPrefix(l, sentinel+" "); ok {
				code, _ := strconv.Atoi(rest)
				text := strings.Join(out, "\n")
				return strings.TrimSuffix(text, "\n"), code
			}
			out = append(out, l)
		case <-deadline:
			t.Fatalf("%q still running after %s:\n%s", command, timeout, strings.Join(out, "\n"))
		}
	}
}

func (s *session) close() {
	s.in.Close()
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Wait()
}

// background is a command started in the background.
type background struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (b *background) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

func (b *background) text() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// freeBase finds a base port whose testnet ports (p2p TCP and UDP at
// base+2i, API at base+1000+i) are free for n nodes.
func freeBase(t *testing.T, n int) int {
	for attempt := range 50 {
		base := 20000 + ((os.Getpid()+attempt*7919)%110)*100
		ok := true
		var closers []io.Closer
		for i := 0; i < n && ok; i++ {
			for _, p := range []int{base + 2*i, base + 1000 + i} {
				l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
				if err != nil {
					ok = false
					break
				}
				closers = append(closers, l)
			}
			if u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(base+2*i)); err == nil {
				closers = append(closers, u)
			} else {
				ok = false
			}
		}
		for _, c := range closers {
			c.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range for the docs' testnet")
	return 0
}

var initRe = regexp.MustCompile(`(verity testnet init\b[^|;&]*)`)

// movePorts applies the one change made to the docs' commands: the
// testnet's ports.
func movePorts(cmd string, base int) string {
	cmd = strings.ReplaceAll(cmd, "127.0.0.1:27600", "127.0.0.1:"+strconv.Itoa(base+1000))
	return initRe.ReplaceAllStringFunc(cmd, func(s string) string {
		if strings.Contains(s, "--base-port") {
			return s
		}
		if i := strings.Index(s, "#"); i >= 0 {
			return strings.TrimRight(s[:i], " ") + " --base-port " + strconv.Itoa(base) + " " + s[i:]
		}
		return strings.TrimRight(s, " ") + " --base-port " + strconv.Itoa(base)
	})
}

// freshCopy copies the repository's files (tracked and new, as they are
// in the working tree, without ignored files) to dir, as a fresh clone of
// this tree would have them.
func freshCopy(t *testing.T, root, dir string) {
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, rel)
		info, err := os.Lstat(src)
		if err != nil || !info.Mode().IsRegular() {
			continue // deleted in the working tree, or not a file
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLongDocs runs every runnable block of README.md and docs/*.md, in
// order, against a fresh copy of the repository and a testnet built from
// it, and checks each block's exit status and output shape.
func TestLongDocs(t *testing.T) {
	testtier.Long(t, "runs the docs' commands against a fresh testnet")
	for _, tool := range []string{"bash", "git", "curl", "jq", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the docs' commands need %s: %v", tool, err)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"README.md"}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	sort.Strings(docs)
	for _, d := range docs {
		files = append(files, filepath.Join("docs", filepath.Base(d)))
	}
	var blocks []block
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		bs, err := parseBlocks(f, string(data))
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, bs...)
	}
	if len(blocks) == 0 {
		t.Fatal("no runnable blocks in the docs")
	}

	work := t.TempDir()
	freshCopy(t, root, work)
	base := freeBase(t, 10)
	// The copy's directory comes first on PATH: docs/ says "verity" for
	// the binary the README builds there.
	env := append(os.Environ(), "VERITY_PASSWORD=", "GOFLAGS=", "PATH="+work+string(os.PathListSeparator)+os.Getenv("PATH"))
	sh := newSession(t, work, env)
	defer sh.close()
	var bgs []*background
	defer func() {
		for _, b := range bgs {
			syscall.Kill(-b.cmd.Process.Pid, syscall.SIGINT)
			select {
			case <-b.done:
			case <-time.After(time.Minute):
				syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
				<-b.done
			}
		}
	}()
	for _, b := range blocks {
		where := fmt.Sprintf("%s:%d", b.file, b.line)
		switch b.kind {
		case "background":
			cmds := commands(b.body)
			if len(cmds) != 1 {
				t.Fatalf("%s: a background block holds one command, not %d", where, len(cmds))
			}
			bg := &background{done: make(chan struct{})}
			bg.cmd = exec.Command("bash", "-c", movePorts(cmds[0], base))
			bg.cmd.Dir, bg.cmd.Env = work, env
			bg.cmd.Stdout, bg.cmd.Stderr = bg, bg
			bg.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := bg.cmd.Start(); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			go func() { bg.cmd.Wait(); close(bg.done) }()
			bgs = append(bgs, bg)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			for !strings.Contains(bg.text(), b.ready) {
				select {
				case <-bg.done:
					cancel()
					t.Fatalf("%s: %q ended before it printed %q:\n%s", where, cmds[0], b.ready, bg.text())
				case <-ctx.Done():
					cancel()
					t.Fatalf("%s: %q did not print %q within 3 minutes:\n%s", where, cmds[0], b.ready, bg.text())
				case <-time.After(100 * time.Millisecond):
				}
			}
			cancel()
			t.Logf("%s: %s: ready", where, cmds[0])
		case "sh":
			cmds := commands(b.body)
			for i, c := range cmds {
				want := 0
				if i == len(cmds)-1 {
					want = b.exit
				}
				out, code := sh.run(t, movePorts(c, base), 5*time.Minute)
				t.Logf("%s: $ %s: exit %d", where, c, code)
				if code != want {
					t.Errorf("%s: %q exited %d, the docs say %d:\n%s", where, c, code, want, out)
				}
			}
		case "transcript":
			for _, st := range transcript(b.body) {
				out, code := sh.run(t, movePorts(st.cmd, base), 5*time.Minute)
				t.Logf("%s: $ %s: exit %d", where, st.cmd, code)
				printed := strings.Split(out, "\n")
				for _, w := range st.want {
					re := shapeOf(w)
					found := false
					for _, p := range printed {
						if re.MatchString(strings.TrimSpace(p)) {
							found = true
							break
						}
					}
					if !found {
						t.Errorf("%s: $ %s\nthe docs show a line\n  %s\nthat it did not print; it printed:\n%s", where, st.cmd, w, out)
					}
				}
			}
		}
	}
}
