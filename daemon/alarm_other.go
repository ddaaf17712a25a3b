//go:build !linux

package daemon

import "time"

// wallAlarm is the alarm on the system's wall clock. Without a kernel
// timer on the wall clock here, it polls (see pollAlarm).
func wallAlarm(at time.Time) (<-chan struct{}, func()) {
	return pollAlarm(time.Now, at)
}
