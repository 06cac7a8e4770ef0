//go:build unix

package testnet

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// terminate asks a node to stop.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

// terminatedBySIGTERM reports whether a process ended through SIGTERM's
// default action, which happens when it gets the signal before it has set up
// its handler: a clean stop all the same.
func terminatedBySIGTERM(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM
}

// detachedProcAttr starts a restarted node in a session of its own: it
// outlives the command that restarted it, and no terminal signal reaches it.
func detachedProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// signalPID sends one of the perturbation signals to a process.
func signalPID(pid int, sig procSignal) error {
	s := map[procSignal]syscall.Signal{sigKill: syscall.SIGKILL, sigStop: syscall.SIGSTOP, sigCont: syscall.SIGCONT, sigTerm: syscall.SIGTERM}[sig]
	return syscall.Kill(pid, s)
}

// alive reports whether pid is a process that has not ended (a zombie,
// ended but not yet reaped, counts as ended).
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	return !zombie(pid)
}
