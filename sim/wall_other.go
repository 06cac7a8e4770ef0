//go:build !unix

package sim

import (
	"errors"
	"time"
)

// wallNow is the machine's clock (virtual inside a synctest bubble here).
func wallNow() time.Time { return time.Now() }

// selfCPU is not measured on this platform.
func selfCPU() (time.Duration, error) { return 0, errors.New("process CPU time: unix only") }

// selfMaxRSS is not measured on this platform.
func selfMaxRSS() uint64 { return 0 }
