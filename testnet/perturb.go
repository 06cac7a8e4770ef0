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
	"time"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/node"
)

// PerturbedFile is the marker a kill leaves in the node's home: the node is
// down on purpose. `verity testnet up` does not count the death of a node
// whose home holds it as a failure; a restart removes it.
const PerturbedFile = "perturbed"

// AdminP2PPath is the node's admin route that disconnect and connect call.
const AdminP2PPath = "/v1/admin/p2p"

// Errors of the perturbations.
var (
	// ErrUnknownNode means the testnet has no node of that name.
	ErrUnknownNode = errors.New("no such node in the testnet")
	// ErrNotRunning means the node has no running process (or is stopped,
	// in-process).
	ErrNotRunning = errors.New("node is not running")
	// ErrRunning means a restart was asked of a node that runs.
	ErrRunning = errors.New("node is already running")
	// ErrUnsupported means the action cannot apply to this kind of network.
	ErrUnsupported = errors.New("perturbation not supported")
	// ErrAdmin means the node's admin route refused the request or does
	// not exist.
	ErrAdmin = errors.New("node admin request failed")
)

// procSignal names the signals the perturbations send.
type procSignal int

const (
	sigKill procSignal = iota
	sigStop
	sigCont
	sigTerm
)

// pidPoll is how often a perturbation checks whether a process ended.
const pidPoll = 20 * time.Millisecond

// PerturbOptions configure Perturb.
type PerturbOptions struct {
	// Command and GlobalArgs start a restarted node, as in ProcessOptions
	// (default: this executable, no arguments).
	Command    string
	GlobalArgs []string
	// Client makes the admin and health requests (default: a client with a
	// 5s timeout).
	Client *http.Client
	// Attached starts a restarted node like the runner's own nodes (ended
	// with the runner where the platform allows), for restarts that
	// `testnet up` makes from its schedule. Without it a restarted node
	// runs in a session of its own and outlives the command that started
	// it, as `verity testnet perturb` needs.
	Attached bool
}

// Node returns the node named name.
func (l *Layout) Node(name string) (NodeInfo, error) {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	names := make([]string, len(l.Nodes))
	for i, n := range l.Nodes {
		names[i] = n.Name
	}
	return NodeInfo{}, fmt.Errorf("%w: %q (nodes: %s)", ErrUnknownNode, name, strings.Join(names, ", "))
}

// Perturb applies a to the node named name of the testnet l, whose nodes
// run as processes (`verity testnet up`):
//
//   - kill writes the perturbed marker into the node's home, sends SIGKILL
//     to the pid in its node.pid and waits until the process has ended;
//   - restart starts `<command> node --home <home>` again in a session of its
//     own, appending to node.log, writes node.pid, removes the marker and
//     waits until the node's /healthz answers 200 (or the process ends:
//     ErrExited);
//   - pause and resume send SIGSTOP and SIGCONT;
//   - disconnect and connect POST {"action": ...} to the node's
//     /v1/admin/p2p with the node's admin token (NodeAdminToken).
//
// ctx bounds every wait.
func Perturb(ctx context.Context, l *Layout, name string, a Action, opts PerturbOptions) error {
	info, err := l.Node(name)
	if err != nil {
		return err
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 5 * time.Second}
	}
	switch a {
	case ActionKill:
		return killNode(ctx, info)
	case ActionRestart:
		return restartNode(ctx, info, opts)
	case ActionPause, ActionResume:
		pid, err := runningPID(info)
		if err != nil {
			return err
		}
		sig := sigStop
		if a == ActionResume {
			sig = sigCont
		}
		if err := signalPID(pid, sig); err != nil {
			return fmt.Errorf("%s %s (pid %d): %w", a, info.Name, pid, err)
		}
		return nil
	case ActionDisconnect, ActionConnect:
		token, err := NodeAdminToken(info)
		if err != nil {
			return err
		}
		return AdminP2P(ctx, opts.Client, info.Name, info.API, token, a)
	}
	_, err = ParseAction(string(a))
	return err
}

// ReadPID reads the process id in the node's node.pid; ErrNotRunning when
// there is none.
func ReadPID(home string) (int, error) {
	data, err := os.ReadFile(filepath.Join(home, PIDFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("%w: no %s in %s", ErrNotRunning, PIDFile, home)
	}
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%w: %s holds %q", ErrInvalidLayout, filepath.Join(home, PIDFile), data)
	}
	return pid, nil
}

// runningPID is the pid of the node's running process.
func runningPID(info NodeInfo) (int, error) {
	pid, err := ReadPID(info.Home)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", info.Name, err)
	}
	if !alive(pid) {
		return 0, fmt.Errorf("%s: %w (pid %d in %s has ended)", info.Name, ErrNotRunning, pid, PIDFile)
	}
	// A pid file left by a runner that died may name a process that has
	// since reused the pid: signal it only if it is this node.
	if !isNodeProcess(pid, info.Home) {
		return 0, fmt.Errorf("%s: %w (pid %d in %s is another program now)", info.Name, ErrNotRunning, pid, PIDFile)
	}
	return pid, nil
}

// isNodeProcess reports whether pid runs `verity node` for home. Where the
// command line cannot be read (no /proc), it trusts the pid file.
func isNodeProcess(pid int, home string) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return !procAvailable()
	}
	args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
	// A relative --home is relative to the process's own directory.
	cwd, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "cwd"))
	sameDir := func(arg, home string) bool {
		if !filepath.IsAbs(arg) && cwd != "" {
			arg = filepath.Join(cwd, arg)
		}
		return samePath(arg, home)
	}
	hasNode, hasHome := false, false
	for i, a := range args {
		if a == "node" {
			hasNode = true
		}
		if (a == "--home" || a == "-home") && i+1 < len(args) && sameDir(args[i+1], home) {
			hasHome = true
		}
		if v, ok := strings.CutPrefix(a, "--home="); ok && sameDir(v, home) {
			hasHome = true
		}
	}
	return hasNode && hasHome
}

func procAvailable() bool {
	_, err := os.Stat("/proc/self/cmdline")
	return err == nil
}

func samePath(a, b string) bool {
	x, err1 := filepath.Abs(a)
	y, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && filepath.Clean(x) == filepath.Clean(y)
}

// Perturbed reports whether the node's home holds the perturbed marker.
func Perturbed(home string) bool {
	_, err := os.Stat(filepath.Join(home, PerturbedFile))
	return err == nil
}

// removePIDFile removes the node's pid file if it still names pid.
func removePIDFile(home string, pid int) {
	if got, err := ReadPID(home); err == nil && got == pid {
		os.Remove(filepath.Join(home, PIDFile))
	}
}

func killNode(ctx context.Context, info NodeInfo) error {
	pid, err := runningPID(info)
	if err != nil {
		return err
	}
	// The marker goes first: whoever sees the process end sees it.
	marker := fmt.Sprintf("kill pid %d at %s\n", pid, time.Now().UTC().Format(time.RFC3339Nano))
	if err := os.WriteFile(filepath.Join(info.Home, PerturbedFile), []byte(marker), 0o644); err != nil {
		return fmt.Errorf("%s: perturbed marker: %w", info.Name, err)
	}
	if err := signalPID(pid, sigKill); err != nil {
		os.Remove(filepath.Join(info.Home, PerturbedFile)) // it did not die: a later death is not ours
		return fmt.Errorf("kill %s (pid %d): %w", info.Name, pid, err)
	}
	if err := waitEnded(ctx, pid); err != nil {
		os.Remove(filepath.Join(info.Home, PerturbedFile))
		return fmt.Errorf("kill %s (pid %d): %w", info.Name, pid, err)
	}
	removePIDFile(info.Home, pid)
	appendLog(info, fmt.Sprintf("--- %s: killed (SIGKILL, pid %d) by a perturbation\n", time.Now().UTC().Format(time.RFC3339), pid))
	return nil
}

// waitEnded waits until pid has ended or ctx ends.
func waitEnded(ctx context.Context, pid int) error {
	t := time.NewTicker(pidPoll)
	defer t.Stop()
	for alive(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("process still running: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

func appendLog(info NodeInfo, line string) {
	f, err := os.OpenFile(info.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	f.WriteString(line)
	f.Close()
}

func restartNode(ctx context.Context, info NodeInfo, opts PerturbOptions) error {
	if pid, err := ReadPID(info.Home); err == nil && alive(pid) {
		return fmt.Errorf("restart %s: %w (pid %d)", info.Name, ErrRunning, pid)
	}
	if opts.Command == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find verity binary: %w", err)
		}
		opts.Command = exe
	}
	logFile, err := os.OpenFile(info.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s log: %w", info.Name, err)
	}
	defer logFile.Close()
	args := append(slices.Clone(opts.GlobalArgs), "node", "--home", info.Home)
	cmd := exec.Command(opts.Command, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = detachedProcAttr()
	if opts.Attached {
		cmd.SysProcAttr = sysProcAttr()
	}
	fmt.Fprintf(logFile, "--- %s: restarting (perturbation) %s %s\n", time.Now().UTC().Format(time.RFC3339), opts.Command, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("restart %s: %w", info.Name, err)
	}
	pid := cmd.Process.Pid
	ended := make(chan struct{})
	// Reap the process should it end while this program still runs; once
	// this program exits, the system adopts it.
	go func() {
		cmd.Wait()
		close(ended)
	}()
	if err := os.WriteFile(filepath.Join(info.Home, PIDFile), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		cmd.Process.Kill()
		return fmt.Errorf("%s pid file: %w", info.Name, err)
	}
	// The pid file goes first, then the marker: a watcher never sees the
	// node neither running nor marked down.
	if err := os.Remove(filepath.Join(info.Home, PerturbedFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: remove perturbed marker: %w", info.Name, err)
	}
	t := time.NewTicker(healthPoll)
	defer t.Stop()
	for {
		if Healthy(ctx, opts.Client, info.API) {
			return nil
		}
		select {
		case <-ended:
			removePIDFile(info.Home, pid)
			return fmt.Errorf("%w: %s (pid %d) ended after its restart; see %s", ErrExited, info.Name, pid, info.LogPath())
		case <-ctx.Done():
			return fmt.Errorf("restart %s (pid %d): %w: %w", info.Name, pid, ErrNotReady, ctx.Err())
		case <-t.C:
		}
	}
}

// NodeAdminToken reads the admin token of a testnet node from its home:
// the file its config.toml names in [api] admin_token_file (Init writes
// admin.token), else the admin.token a node writes into its data directory
// when it starts.
func NodeAdminToken(info NodeInfo) (string, error) {
	cfg, err := node.LoadConfig(info.Home)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrAdmin, info.Name, err)
	}
	tok, err := node.ReadAdminToken(cfg)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrAdmin, info.Name, err)
	}
	return tok, nil
}

// AdminP2P posts {"action": "disconnect"|"connect"} to the node's
// /v1/admin/p2p with the node's admin token. A refusal, or a node without
// that route, is an error wrapping ErrAdmin that quotes the node's JSON
// error.
func AdminP2P(ctx context.Context, client *http.Client, name, apiURL, token string, a Action) error {
	if a != ActionDisconnect && a != ActionConnect {
		return fmt.Errorf("%w: %s is not a p2p admin action", ErrUnknownAction, a)
	}
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	if apiURL == "" {
		return fmt.Errorf("%w: %s has no HTTP API", ErrAdmin, name)
	}
	body, _ := json.Marshal(map[string]string{"action": string(a)})
	url := strings.TrimRight(apiURL, "/") + AdminP2PPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %w", a, name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrAdmin, a, name, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	var e api.Error
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &e) == nil && e.Code != "" {
		msg = e.Code + ": " + e.Message
	}
	hint := ""
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		hint = " (this node has no POST " + AdminP2PPath + " route)"
	}
	return fmt.Errorf("%w: %s %s: POST %s: HTTP %d: %s%s", ErrAdmin, a, name, url, resp.StatusCode, msg, hint)
}
