//go:build unix

package sim

import (
	"syscall"
	"time"
)

// wallNow is the machine's clock, read with a system call so that it is the
// real time even inside a testing/synctest bubble, whose time.Now is
// virtual.
func wallNow() time.Time {
	var tv syscall.Timeval
	if err := syscall.Gettimeofday(&tv); err != nil {
		return time.Now()
	}
	return time.Unix(tv.Unix())
}

// selfCPU is the user and system CPU time of this process so far.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// selfMaxRSS is the peak resident set size of this process in bytes.
func selfMaxRSS() uint64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return uint64(ru.Maxrss) * 1024 // KiB on Linux and the BSDs
}
