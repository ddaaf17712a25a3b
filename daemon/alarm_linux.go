package daemon

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// wallAlarm is the alarm on the system's wall clock: a timerfd on
// CLOCK_REALTIME armed for the absolute time at. The kernel fires it when
// the wall clock reaches at, also right after a resume from a suspend that
// passed at, and TFD_TIMER_CANCEL_ON_SET wakes it when the clock is set
// (the loop then reads the clock again). Waiting costs no wake-up until
// then. If no timerfd can be had, it falls back to polling.
func wallAlarm(at time.Time) (<-chan struct{}, func()) {
	a, err := newTimerfdAlarm(at)
	if err != nil {
		return pollAlarm(time.Now, at)
	}
	return a.c, a.stop
}

// timerfdAlarm is one armed timerfd and the goroutine waiting on it.
type timerfdAlarm struct {
	f    *os.File
	c    chan struct{}
	done chan struct{} // closed when wait returns
}

func newTimerfdAlarm(at time.Time) (*timerfdAlarm, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	// A zero it_value would disarm the timer: a time at or before the
	// epoch is simply due.
	if epoch := time.Unix(0, 1); at.Before(epoch) {
		at = epoch
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(at.UnixNano())}
	if err := unix.TimerfdSettime(fd, unix.TFD_TIMER_ABSTIME|unix.TFD_TIMER_CANCEL_ON_SET, &spec, nil); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("timerfd_settime: %w", err)
	}
	// Non-blocking, so the runtime's poller waits for it: no thread
	// sleeps in read.
	a := &timerfdAlarm{f: os.NewFile(uintptr(fd), "timerfd"), c: make(chan struct{}, 1), done: make(chan struct{})}
	go a.wait()
	return a, nil
}

// wait reads the timerfd once: it returns when the timer expires, when
// the clock was set (ECANCELED), or when stop closes it (no signal then).
func (a *timerfdAlarm) wait() {
	defer close(a.done)
	var buf [8]byte
	_, err := a.f.Read(buf[:])
	if errors.Is(err, os.ErrClosed) {
		return
	}
	a.c <- struct{}{}
}

func (a *timerfdAlarm) stop() { a.f.Close() }
