//go:build !unix

package testnet

import (
	"os"
	"syscall"
)

// sysProcAttr has nothing to set where there are no process groups.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// terminate stops a node; without SIGTERM that means killing it.
func terminate(p *os.Process) error { return p.Kill() }

// terminatedBySIGTERM is false where there is no SIGTERM.
func terminatedBySIGTERM(error) bool { return false }
