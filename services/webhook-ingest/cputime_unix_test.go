//go:build unix

package webhookingest_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) this process has used so
// far: in-process benchmarks report it per operation, a figure that a
// loaded machine disturbs far less than wall-clock time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
