package daemon

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fdinfo reads the kernel's view of a timerfd: clock, flags and the time
// left (in nanoseconds).
func fdinfo(t *testing.T, a *timerfdAlarm) (clockid, flags int, left time.Duration) {
	t.Helper()
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", a.f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	field := func(re string) int64 {
		m := regexp.MustCompile(re).FindSubmatch(info)
		if m == nil {
			t.Fatalf("fdinfo lacks %s:\n%s", re, info)
		}
		n, err := strconv.ParseInt(string(m[1]), 0, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	clock := field(`clockid:\s*(\d+)`)
	fl := field(`settime flags:\s*0?(\d+)`)
	sec := field(`it_value:\s*\((\d+),`)
	nsec := field(`it_value:\s*\(\d+,\s*(\d+)\)`)
	return int(clock), int(fl), time.Duration(sec)*time.Second + time.Duration(nsec)
}

func TestTimerfdAlarm_armedOnTheWallClock(t *testing.T) {
	at := time.Now().Add(time.Hour)
	a, err := newTimerfdAlarm(at)
	if err != nil {
		t.Fatal(err)
	}
	defer a.stop()
	clockid, flags, left := fdinfo(t, a)
	if clockid != unix.CLOCK_REALTIME {
		t.Errorf("clockid %d, want CLOCK_REALTIME: only the wall clock counts a suspend and follows clock changes", clockid)
	}
	if want := unix.TFD_TIMER_ABSTIME | unix.TFD_TIMER_CANCEL_ON_SET; flags != want {
		t.Errorf("settime flags %#o, want %#o (absolute, woken when the clock is set)", flags, want)
	}
	// The kernel shows the time left until the absolute time.
	if left <= 59*time.Minute || left > time.Hour {
		t.Errorf("armed for %v from now, want just under an hour", left)
	}
}

func TestTimerfdAlarm_firesWhenDue(t *testing.T) {
	for _, at := range []time.Time{time.Now().Add(-time.Second), {}} {
		a, err := newTimerfdAlarm(at)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-a.c:
		case <-time.After(time.Minute): // a bound on failure, not a timing assertion
			t.Errorf("alarm for %v did not fire", at)
		}
		a.stop()
	}
}

func TestTimerfdAlarm_stopReleasesIt(t *testing.T) {
	a, err := newTimerfdAlarm(time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	a.stop()
	if _, err := a.f.Stat(); err == nil {
		t.Error("the timerfd is still open after stop")
	}
	select {
	case <-a.done:
	case <-time.After(time.Minute): // a bound on failure, not a timing assertion
		t.Fatal("the goroutine waiting on the timerfd did not end after stop")
	}
	select {
	case <-a.c:
		t.Error("a stopped alarm fired")
	default:
	}
}

func TestWallAlarm(t *testing.T) {
	c, stop := wallAlarm(time.Now().Add(-time.Second))
	defer stop()
	select {
	case <-c:
	case <-time.After(time.Minute): // a bound on failure, not a timing assertion
		t.Error("a due wall-clock alarm did not fire")
	}
}

// timerfds counts this process's open timerfds.
func timerfds(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && target == "anon_inode:[timerfd]" {
			n++
		}
	}
	return n
}

func TestWallAlarm_isATimerfd(t *testing.T) {
	before := timerfds(t)
	_, stop := wallAlarm(time.Now().Add(time.Hour))
	if n := timerfds(t); n != before+1 {
		t.Errorf("%d timerfds open while the alarm is set, want %d", n, before+1)
	}
	stop()
	if n := timerfds(t); n != before {
		t.Errorf("%d timerfds open after stop, want %d", n, before)
	}
}

func TestDaemon_alarm_defaultIsTheWallAlarm(t *testing.T) {
	// Also with Now set, as the wiring sets it to time.Now: an unset Alarm
	// must not fall back to polling.
	d := Daemon{Now: time.Now}
	before := timerfds(t)
	_, stop := d.alarm(time.Now().Add(time.Hour))
	defer stop()
	if n := timerfds(t); n != before+1 {
		t.Errorf("%d timerfds open while the loop waits, want %d: the default alarm is not the wall-clock timerfd", n, before+1)
	}
}
