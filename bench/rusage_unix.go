//go:build unix

package bench

import (
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// selfCPU is the user and system CPU time of this process so far.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// selfMaxRSS is the peak resident set size of this process in bytes.
func selfMaxRSS() (uint64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	if runtime.GOOS == "darwin" {
		return uint64(ru.Maxrss), nil // bytes there
	}
	return uint64(ru.Maxrss) * 1024, nil // KiB on Linux and the BSDs
}
