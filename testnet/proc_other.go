//go:build !unix

package testnet

import (
	"fmt"
	"os"
	"syscall"
)

// sysProcAttr has nothing to set where there are no process groups.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// detachedProcAttr has nothing to set where there are no sessions.
func detachedProcAttr() *syscall.SysProcAttr { return nil }

// terminate stops a node; without SIGTERM that means killing it.
func terminate(p *os.Process) error { return p.Kill() }

// terminatedBySIGTERM is false where there is no SIGTERM.
func terminatedBySIGTERM(error) bool { return false }

// signalPID: perturbations by signal need a Unix system.
func signalPID(int, procSignal) error {
	return fmt.Errorf("%w: signals need a Unix system", ErrUnsupported)
}

// alive cannot tell without signals; it reports whether the process can be
// found at all.
func alive(pid int) bool {
	_, err := os.FindProcess(pid)
	return pid > 0 && err == nil
}
