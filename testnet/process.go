package testnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/verity-network/verity/api"
)

// Defaults of ProcessOptions.
const (
	DefaultGrace = 10 * time.Second
	// healthPoll is how often WaitHealthy asks each node's /healthz.
	healthPoll = 200 * time.Millisecond
	// healthTimeout bounds one /healthz request.
	healthTimeout = 2 * time.Second
)

// ErrExited is returned by WaitHealthy when a node process ends before every
// node is healthy.
var ErrExited = errors.New("node process exited")

// ErrStop is returned by Processes.Stop when a node did not end cleanly on
// SIGTERM: it failed, or had to be killed after the grace period.
var ErrStop = errors.New("node process did not stop cleanly")

// ProcessOptions configure StartProcesses.
type ProcessOptions struct {
	// Command is the verity binary; default os.Executable().
	Command string
	// GlobalArgs go before the node subcommand, e.g. --log-level debug.
	GlobalArgs []string
	// Grace is how long Stop waits after SIGTERM before it kills a node
	// (default 10s).
	Grace time.Duration
}

// Process is one node running as its own process.
type Process struct {
	Info NodeInfo

	cmd    *exec.Cmd
	done   chan struct{}
	err    error // Wait's result; read after done is closed
	killed bool  // set by Stop when it kills the process
	// perturbed: the node's home held the PerturbedFile marker when the
	// process ended; read after done is closed.
	perturbed bool
}

// Perturbed reports whether a perturbation ended the process (its home
// held the PerturbedFile marker when it ended); valid once Done is closed.
func (p *Process) Perturbed() bool {
	<-p.done
	return p.perturbed
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit error (nil for exit status 0); valid once Done
// is closed.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Processes are the nodes of a testnet, one process each.
type Processes struct {
	procs  []*Process
	exited chan *Process
	grace  time.Duration

	stopOnce sync.Once
	stopErr  error
}

// StartProcesses starts `<command> [global args] node --home <home>` for
// every node of l, appending its stdout and stderr to <home>/node.log and
// writing its process id to <home>/node.pid while it runs. If one node fails
// to start, those already started are stopped.
func StartProcesses(l *Layout, opts ProcessOptions) (*Processes, error) {
	if opts.Command == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find verity binary: %w", err)
		}
		opts.Command = exe
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	ps := &Processes{exited: make(chan *Process, len(l.Nodes)), grace: opts.Grace}
	for _, info := range l.Nodes {
		p, err := startProcess(info, opts)
		if err != nil {
			return nil, errors.Join(err, ps.Stop())
		}
		ps.procs = append(ps.procs, p)
		go func() {
			<-p.done
			ps.exited <- p
		}()
	}
	return ps, nil
}

func startProcess(info NodeInfo, opts ProcessOptions) (*Process, error) {
	logFile, err := os.OpenFile(info.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", info.Name, err)
	}
	args := append(slices.Clone(opts.GlobalArgs), "node", "--home", info.Home)
	cmd := exec.Command(opts.Command, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	fmt.Fprintf(logFile, "--- %s: starting %s %s\n", time.Now().UTC().Format(time.RFC3339), opts.Command, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", info.Name, err)
	}
	// A marker left by an earlier run would hide this process's failure.
	os.Remove(filepath.Join(info.Home, PerturbedFile))
	pidPath := filepath.Join(info.Home, PIDFile)
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
		return nil, fmt.Errorf("%s pid file: %w", info.Name, err)
	}
	p := &Process{Info: info, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		p.perturbed = Perturbed(info.Home)
		// A restarted node may have written its own pid by now.
		removePIDFile(info.Home, cmd.Process.Pid)
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// List returns the processes, node0 first.
func (ps *Processes) List() []*Process { return slices.Clone(ps.procs) }

// Exited delivers each process once it has ended, in the order they end.
func (ps *Processes) Exited() <-chan *Process { return ps.exited }

// WaitHealthy polls every node's GET /healthz until all answer 200, a
// process ends (ErrExited) or ctx ends. progress, if set, is called with
// the number of healthy nodes whenever it changes and once at the start.
func (ps *Processes) WaitHealthy(ctx context.Context, progress func(healthy, total int)) error {
	client := &http.Client{Timeout: healthTimeout}
	healthy := make([]bool, len(ps.procs))
	count, reported := 0, -1
	t := time.NewTicker(healthPoll)
	defer t.Stop()
	for {
		for i, p := range ps.procs {
			select {
			case <-p.done:
				return fmt.Errorf("%w: %s: %v", ErrExited, p.Info.Name, exitDescription(p.err))
			default:
			}
			if !healthy[i] && HealthyNode(ctx, client, p.Info) {
				healthy[i] = true
				count++
			}
		}
		if progress != nil && count != reported {
			progress(count, len(ps.procs))
			reported = count
		}
		if count == len(ps.procs) {
			return nil
		}
		select {
		case <-ctx.Done():
			var waiting []string
			for i, p := range ps.procs {
				if !healthy[i] {
					waiting = append(waiting, p.Info.Name)
				}
			}
			return fmt.Errorf("%w: %s: %w", ErrNotReady, strings.Join(waiting, ", "), ctx.Err())
		case <-t.C:
		}
	}
}

// Healthy reports whether GET <api>/healthz answers 200. A nil client means
// one with a short timeout.
func Healthy(ctx context.Context, client *http.Client, api string) bool {
	if client == nil {
		client = &http.Client{Timeout: healthTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(api, "/")+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// HealthyNode reports whether GET <api>/healthz answers 200 for this very
// node: the address it answers with is info's. Another process on the same
// port (another testnet's node, say) is not this node, however healthy.
func HealthyNode(ctx context.Context, client *http.Client, info NodeInfo) bool {
	if client == nil {
		client = &http.Client{Timeout: healthTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(info.API, "/")+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var h api.Health
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&h); err != nil {
		return false
	}
	return resp.StatusCode == http.StatusOK && h.Address == info.Address
}

// Stop sends SIGTERM to every running node, waits for them, and kills those
// still running after the grace period. It returns an error wrapping ErrStop
// for each node that failed or had to be killed. Stop is idempotent.
func (ps *Processes) Stop() error {
	ps.stopOnce.Do(func() { ps.stopErr = ps.stop() })
	return ps.stopErr
}

func (ps *Processes) stop() error {
	// A node that had ended before Stop was reported when it ended (by
	// WaitHealthy or Watch); it did not fail to stop.
	endedBefore := make(map[*Process]bool)
	for _, p := range ps.procs {
		select {
		case <-p.done:
			endedBefore[p] = true
		default:
			// A paused node handles SIGTERM only once it runs again.
			signalPID(p.PID(), sigCont)
			terminate(p.cmd.Process)
		}
	}
	adopted := ps.stopAdopted()
	grace := time.NewTimer(ps.grace)
	defer grace.Stop()
	var errs []error
	for _, p := range ps.procs {
		select {
		case <-p.done:
		case <-grace.C:
			// The grace period is over: kill this node and every other
			// node still running.
			for _, q := range ps.procs {
				select {
				case <-q.done:
				default:
					q.killed = true
					q.cmd.Process.Kill()
				}
			}
			<-p.done
		}
		switch {
		case p.killed:
			errs = append(errs, fmt.Errorf("%w: %s killed after %s%s", ErrStop, p.Info.Name, ps.grace, lastLogLines(p.Info)))
		case p.err != nil && !terminatedBySIGTERM(p.err) && !p.perturbed && !endedBefore[p]:
			errs = append(errs, fmt.Errorf("%w: %s: %v%s", ErrStop, p.Info.Name, exitDescription(p.err), lastLogLines(p.Info)))
		}
	}
	return errors.Join(append(errs, <-adopted)...)
}

func exitDescription(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// stopLogLines is how many lines of a node's log an ErrStop error quotes:
// what the node said as it failed to stop, which a caller that removes the
// node's home (verity bench) cannot read afterwards.
const stopLogLines = 6

// lastLogLines is the end of a node's log, indented, for an error; empty if
// it cannot be read.
func lastLogLines(info NodeInfo) string {
	tail, err := Tail(info.LogPath(), stopLogLines)
	if err != nil || strings.TrimSpace(tail) == "" {
		return ""
	}
	return "; the end of its log:\n    " + strings.ReplaceAll(strings.TrimRight(tail, "\n"), "\n", "\n    ")
}

// Tail returns at most the last lines lines of the file at path (reading at
// most its last 64 KiB).
func Tail(path string, lines int) (string, error) {
	if lines <= 0 {
		return "", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	const window = 64 << 10
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	off := max(st.Size()-window, 0)
	buf, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return "", err
	}
	buf = bytes.TrimRight(buf, "\n")
	for i, n := len(buf)-1, 0; i >= 0; i-- {
		if buf[i] == '\n' {
			n++
			if n == lines {
				return string(buf[i+1:]) + "\n", nil
			}
		}
	}
	if len(buf) == 0 {
		return "", nil
	}
	return string(buf) + "\n", nil
}

// NodeExitError reports a node that ended although no perturbation ended
// it. It wraps ErrExited.
type NodeExitError struct {
	Node NodeInfo
	// PID is the process that ended.
	PID int
	// Err is the process's exit error when it was this program's child
	// (nil for exit status 0, or when the process was a restarted one).
	Err error
	// Restarted is set when the process was started by a restart.
	Restarted bool
}

func (e *NodeExitError) Error() string {
	what := exitDescription(e.Err)
	if e.Restarted {
		what = "its restarted process ended"
	}
	return fmt.Sprintf("%s: %s (pid %d): %s", ErrExited, e.Node.Name, e.PID, what)
}

func (e *NodeExitError) Unwrap() error { return ErrExited }

// watchPoll is how often Watch looks at the nodes whose process a
// perturbation replaced.
const watchPoll = 250 * time.Millisecond

// Watch watches the nodes until ctx ends (it returns nil) or a node ends
// that no perturbation ended (a *NodeExitError). A node is ended by a
// perturbation when its home holds the PerturbedFile marker, which Perturb
// writes before it kills the node. When a perturbation restarts such a
// node, Watch adopts the new process (the pid in node.pid) and watches it
// the same way; Stop stops it. note, if set, is told of each expected exit
// and each adoption.
func (ps *Processes) Watch(ctx context.Context, note func(string)) error {
	if note == nil {
		note = func(string) {}
	}
	// gone marks the nodes whose own process a perturbation ended;
	// adopted is the pid of the process a restart put in its place.
	gone := make([]bool, len(ps.procs))
	adopted := make([]int, len(ps.procs))
	t := time.NewTicker(watchPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-ps.exited:
			if !p.perturbed {
				return &NodeExitError{Node: p.Info, PID: p.PID(), Err: p.err}
			}
			gone[slices.Index(ps.procs, p)] = true
			note(fmt.Sprintf("%s (pid %d) ended by a perturbation", p.Info.Name, p.PID()))
		case <-t.C:
		}
		for i, p := range ps.procs {
			// The marker first: a restart writes the new pid file before
			// it removes the marker.
			if !gone[i] || Perturbed(p.Info.Home) {
				continue
			}
			pid, err := ReadPID(p.Info.Home)
			if err == nil && alive(pid) {
				if adopted[i] != pid {
					adopted[i] = pid
					note(fmt.Sprintf("%s restarted as pid %d", p.Info.Name, pid))
				}
				continue
			}
			if err != nil {
				pid = adopted[i]
			}
			return &NodeExitError{Node: p.Info, PID: pid, Restarted: true}
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// stopAdopted stops, in the background, the processes restarted by
// perturbations in place of nodes whose own process has ended: SIGCONT,
// SIGTERM, then SIGKILL after the grace period. The channel delivers the
// joined errors once all have ended.
func (ps *Processes) stopAdopted() <-chan error {
	type adoptee struct {
		info NodeInfo
		pid  int
	}
	var list []adoptee
	for _, p := range ps.procs {
		if !isClosed(p.done) {
			continue
		}
		if pid, err := ReadPID(p.Info.Home); err == nil && alive(pid) {
			signalPID(pid, sigCont)
			signalPID(pid, sigTerm)
			list = append(list, adoptee{p.Info, pid})
		}
	}
	out := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ps.grace)
		defer cancel()
		var errs []error
		for _, a := range list {
			if waitEnded(ctx, a.pid) != nil {
				signalPID(a.pid, sigKill)
				waitEnded(context.Background(), a.pid)
				errs = append(errs, fmt.Errorf("%w: %s (restarted, pid %d) killed after %s", ErrStop, a.info.Name, a.pid, ps.grace))
			}
			removePIDFile(a.info.Home, a.pid)
		}
		out <- errors.Join(errs...)
	}()
	return out
}

// RunSchedule applies the perturbations of s with apply, each at its time
// after start, until ctx ends or one fails. logf, if set, is told of each
// action before and after it runs. For a process network, apply is
// Perturb on its layout; for an in-process one, Network.Perturb.
func RunSchedule(ctx context.Context, s []Perturbation, start time.Time, apply func(context.Context, Perturbation) error, logf func(string)) error {
	if logf == nil {
		logf = func(string) {}
	}
	for _, p := range s {
		wait := time.NewTimer(time.Until(start.Add(p.At.Duration)))
		select {
		case <-ctx.Done():
			wait.Stop()
			return nil
		case <-wait.C:
		}
		began := time.Now()
		logf(fmt.Sprintf("%s perturbation +%s: %s %s", began.UTC().Format("15:04:05.000"), p.At.Duration, p.Action, p.Node))
		if err := apply(ctx, p); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("perturbation %s: %w", p, err)
		}
		logf(fmt.Sprintf("%s perturbation +%s: %s %s done in %s", time.Now().UTC().Format("15:04:05.000"), p.At.Duration, p.Action, p.Node, time.Since(began).Round(time.Millisecond)))
	}
	return nil
}
