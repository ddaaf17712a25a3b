package daemon

import "time"

// wallClockCheck bounds each wait of the portable alarm: a timer stands
// still while the machine is suspended, so it re-reads the wall clock at
// least this often.
const wallClockCheck = time.Minute

// PollAlarm is the portable Daemon.Alarm for the clock now: each alarm is a
// timer that fires at its time or after a minute, whichever is sooner, so
// the loop re-reads now at least once a minute and notices within a minute
// that a suspend carried the clock past the time. It serves where no
// kernel timer follows the wall clock, and for a Daemon whose Now is not
// the system's clock (tests).
func PollAlarm(now func() time.Time) func(at time.Time) (<-chan struct{}, func()) {
	return func(at time.Time) (<-chan struct{}, func()) { return pollAlarm(now, at) }
}

// pollAlarm is one PollAlarm alarm for the time at.
func pollAlarm(now func() time.Time, at time.Time) (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	wait := min(at.Round(0).Sub(now().Round(0)), wallClockCheck)
	t := time.AfterFunc(wait, func() { c <- struct{}{} })
	return c, func() { t.Stop() }
}
