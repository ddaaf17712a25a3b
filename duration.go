package tokensender

import (
	"fmt"
	"strings"
	"time"
)

// HumanDuration writes d the way log lines and summaries show it: "25
// minutes", "7 seconds", "1 hour 30 minutes", "2 days 4 hours", "500 ms".
// Durations of a second or more are rounded to the second and show at most
// their two largest units.
func HumanDuration(d time.Duration) string {
	if d < 0 {
		return "-" + HumanDuration(-d)
	}
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	d = d.Round(time.Second)
	units := []struct {
		size time.Duration
		name string
	}{
		{24 * time.Hour, "day"},
		{time.Hour, "hour"},
		{time.Minute, "minute"},
		{time.Second, "second"},
	}
	var parts []string
	for _, u := range units {
		if n := d / u.size; n > 0 && len(parts) < 2 {
			parts = append(parts, plural(int64(n), u.name))
			d -= n * u.size
		} else if len(parts) > 0 {
			break // show adjacent units only: "1 hour 30 minutes", never "1 hour 5 seconds"
		}
	}
	return strings.Join(parts, " ")
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
