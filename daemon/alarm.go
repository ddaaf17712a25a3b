package daemon

import "time"

// wallClockCheck bounds each wait of the portable alarm: a timer stands
// still while the machine is suspended, so it re-reads the wall clock at
// least this often.
const wallClockCheck = time.Minute

// pollAlarm is the portable alarm for the wall-clock time at, read from
// now: a timer that fires at at, or after wallClockCheck if that is
// sooner, so the loop notices within a minute that a suspend carried the
// clock past at. It is the fallback where no kernel timer follows the
// wall clock, and the default with an injected Now.
func pollAlarm(now func() time.Time, at time.Time) (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	wait := min(at.Round(0).Sub(now().Round(0)), wallClockCheck)
	t := time.AfterFunc(wait, func() { c <- struct{}{} })
	return c, func() { t.Stop() }
}
