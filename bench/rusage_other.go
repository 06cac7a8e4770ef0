//go:build !unix

package bench

import (
	"errors"
	"time"
)

func selfCPU() (time.Duration, error) {
	return 0, errors.ErrUnsupported
}

func selfMaxRSS() (uint64, error) {
	return 0, errors.ErrUnsupported
}
