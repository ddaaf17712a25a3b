package daemon

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestPollAlarm(t *testing.T) {
	tests := []struct {
		name  string
		in    time.Duration // from now to the alarm's time
		fires time.Duration // when the timer fires
	}{
		{"soon: at its time", 30 * time.Second, 30 * time.Second},
		{"far: re-reads the clock after a minute", 25 * time.Minute, wallClockCheck},
		{"past: at once", -time.Hour, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				c, stop := pollAlarm(time.Now, start.Add(tt.in))
				defer stop()
				<-c
				if got := time.Since(start); got != tt.fires {
					t.Errorf("fired after %v, want %v", got, tt.fires)
				}
			})
		})
	}
}

func TestPollAlarm_stop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, stop := pollAlarm(time.Now, time.Now().Add(time.Second))
		stop()
		time.Sleep(time.Hour)
		select {
		case <-c:
			t.Error("a stopped alarm fired")
		default:
		}
	})
}

func TestDaemon_alarm_injected(t *testing.T) {
	at := time.Now().Add(time.Hour)
	var got time.Time
	c := make(chan struct{})
	d := Daemon{Alarm: func(t time.Time) (<-chan struct{}, func()) { got = t; return c, func() {} }}
	if fired, _ := d.alarm(at); fired != c || !got.Equal(at) {
		t.Errorf("the injected Alarm was not used for %v", at)
	}
}
