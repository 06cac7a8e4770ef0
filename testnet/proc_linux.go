//go:build linux

package testnet

import "syscall"

// sysProcAttr puts a node in its own process group, so that a terminal's
// Ctrl-C reaches only the runner, which then stops the nodes in order; and
// has the kernel send it SIGTERM should the runner die without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
