package testnet

import (
	"bytes"
	"context"
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
		os.Remove(pidPath)
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
			if !healthy[i] && Healthy(ctx, client, p.Info.API) {
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

// Stop sends SIGTERM to every running node, waits for them, and kills those
// still running after the grace period. It returns an error wrapping ErrStop
// for each node that failed or had to be killed. Stop is idempotent.
func (ps *Processes) Stop() error {
	ps.stopOnce.Do(func() { ps.stopErr = ps.stop() })
	return ps.stopErr
}

func (ps *Processes) stop() error {
	for _, p := range ps.procs {
		select {
		case <-p.done:
		default:
			terminate(p.cmd.Process)
		}
	}
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
			errs = append(errs, fmt.Errorf("%w: %s killed after %s", ErrStop, p.Info.Name, ps.grace))
		case p.err != nil && !terminatedBySIGTERM(p.err):
			errs = append(errs, fmt.Errorf("%w: %s: %v", ErrStop, p.Info.Name, exitDescription(p.err)))
		}
	}
	return errors.Join(errs...)
}

func exitDescription(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
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
