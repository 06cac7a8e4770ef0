//go:build unix && !linux

package testnet

import "syscall"

// sysProcAttr puts a node in its own process group, so that a terminal's
// Ctrl-C reaches only the runner, which then stops the nodes in order.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// zombie cannot be told without /proc; a zombie counts as alive until its
// parent reaps it.
func zombie(int) bool { return false }
