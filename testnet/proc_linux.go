//go:build linux

package testnet

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// sysProcAttr puts a node in its own process group, so that a terminal's
// Ctrl-C reaches only the runner, which then stops the nodes in order; and
// has the kernel send it SIGTERM should the runner die without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// zombie reports whether pid has ended but not been reaped by its parent.
func zombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
