package alert

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLimitedBuffer(t *testing.T) {
	for _, tt := range []struct {
		writes []string
		want   string
	}{
		{[]string{"abc"}, "abc"},
		{[]string{"abcde"}, "abcde"}, // exactly the limit: nothing cut
		{[]string{"abcdef"}, "abcde..."},
		{[]string{"ab", "cde"}, "abcde"},
		{[]string{"ab", "cdef", "gh"}, "abcde..."},
		{[]string{"a\n\nb\t"}, "a b"},
		{nil, ""},
	} {
		b := &limitedBuffer{limit: 5}
		for _, w := range tt.writes {
			if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", w, n, err)
			}
		}
		if got := b.String(); got != tt.want {
			t.Errorf("writes %q: String() = %q, want %q", tt.writes, got, tt.want)
		}
	}
}

// TestNotifier_inflightReleased: a finished hook frees its place, so with
// MaxInFlight 1 hooks run one after another for ever.
func TestNotifier_inflightReleased(t *testing.T) {
	dir := t.TempDir()
	n := &Notifier{Exec: "echo x >> " + filepath.Join(dir, "runs"), MaxInFlight: 1}
	for range 3 {
		n.Notify(Notification{Event: EventRecovered, Message: "m"})
		n.wg.Wait()
	}
	n.mu.Lock()
	inflight := n.inflight
	n.mu.Unlock()
	data, err := os.ReadFile(filepath.Join(dir, "runs"))
	if err != nil || string(data) != "x\nx\nx\n" || inflight != 0 {
		t.Fatalf("runs %q (%v), in flight %d; want 3 runs and none in flight", data, err, inflight)
	}
}
