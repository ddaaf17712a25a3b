package tokensender_test

import (
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{25 * time.Minute, "25 minutes"},
		{30 * time.Minute, "30 minutes"},
		{7 * time.Second, "7 seconds"},
		{time.Second, "1 second"},
		{8333 * time.Millisecond, "8 seconds"},
		{500 * time.Millisecond, "500 ms"},
		{90 * time.Minute, "1 hour 30 minutes"},
		{time.Hour + 5*time.Second, "1 hour"},
		{52*time.Hour + 10*time.Minute, "2 days 4 hours"},
		{2*time.Minute + 30*time.Second, "2 minutes 30 seconds"},
		{-3 * time.Minute, "-3 minutes"},
		{0, "0 ms"},
	}
	for _, tt := range tests {
		if got := tokensender.HumanDuration(tt.in); got != tt.want {
			t.Errorf("HumanDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
