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
