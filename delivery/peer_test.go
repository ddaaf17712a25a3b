package delivery

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestPeerAllowed(t *testing.T) {
	const self = 1000
	tests := []struct {
		name    string
		uid     int
		allowed []int
		ok      bool
	}{
		{"our own uid", self, nil, true},
		{"root", 0, nil, true},
		{"another user", 1001, nil, false},
		{"nobody", 65534, nil, false},
		{"allowed with --allow-peer-uid", 1001, []int{1001}, true},
		{"allowed among several", 1002, []int{1001, 1002}, true},
		{"another uid than the allowed one", 1003, []int{1001, 1002}, false},
		{"our uid plus one", self + 1, nil, false},
		{"our uid minus one", self - 1, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := peerAllowed(tt.uid, self, tt.allowed)
			if (err == nil) != tt.ok {
				t.Fatalf("peerAllowed(%d, %d, %v) = %v, want allowed %v", tt.uid, self, tt.allowed, err, tt.ok)
			}
			if err != nil {
				want := "the process listening there runs as uid " + strconv.Itoa(tt.uid) + ", not as this user (uid 1000) or root; if it is your bot, pass --allow-peer-uid " + strconv.Itoa(tt.uid)
				if err.Error() != want {
					t.Errorf("error = %q, want %q", err, want)
				}
			}
		})
	}
}

// TestSender_Send_peerCheck runs the rule through a real connection with the
// uid lookups injected, for both transports, so it is pinned without a
// second user: a peer of another uid gets nothing and is named in one
// ERROR line; --allow-peer-uid lets it through; a failed lookup withholds.
func TestSender_Send_peerCheck(t *testing.T) {
	lookupErr := errors.New("lookup failed")
	tests := []struct {
		name     string
		peer     int
		err      error
		allowed  []int
		want     Outcome
		wantLine string // after "Withheld token from <addr>: "
	}{
		{name: "same user", peer: 1000, want: Delivered},
		{name: "root", peer: 0, want: Delivered},
		{name: "other user", peer: 1001, want: Withheld,
			wantLine: "the process listening there runs as uid 1001, not as this user (uid 1000) or root; if it is your bot, pass --allow-peer-uid 1001"},
		{name: "other user allowed", peer: 1001, allowed: []int{7, 1001}, want: Delivered},
		{name: "other user, another allowed", peer: 1001, allowed: []int{1002}, want: Withheld,
			wantLine: "the process listening there runs as uid 1001, not as this user (uid 1000) or root; if it is your bot, pass --allow-peer-uid 1001"},
		{name: "lookup fails", peer: 0, err: lookupErr, want: Withheld},
	}
	for _, network := range []string{"unix", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				b := mustStartBot(t, network, always("OK"))
				var logs logRecorder
				s := fastSender(&logs, b.addr)
				s.AllowedPeerUIDs = tt.allowed
				var unixCalls, tcpCalls int
				lookup := func() (int, error) { return tt.peer, tt.err }
				s.lookup = peerLookup{
					unixUID: func(*net.UnixConn) (int, error) { unixCalls++; return lookup() },
					tcpUID:  func(*net.TCPConn) (int, error) { tcpCalls++; return lookup() },
					selfUID: func() int { return 1000 },
				}
				res := s.Send(context.Background(), testMsg).Wait()
				if res[0].Outcome != tt.want || res[0].Attempts != 1 {
					t.Fatalf("result = %+v, want %v after 1 attempt", res[0], tt.want)
				}
				if network == "unix" && (unixCalls != 1 || tcpCalls != 0) || network == "tcp" && (tcpCalls != 1 || unixCalls != 0) {
					t.Errorf("lookups: unix %d, tcp %d; want one %s lookup", unixCalls, tcpCalls, network)
				}
				if tt.want != Withheld {
					assertLines(t, logs.Lines(), []string{"INFO Token successfully sent to trading bot"})
					return
				}
				b.waitConns(t, 1)
				if got := b.received(); len(got[0]) != 0 {
					t.Errorf("withheld, yet the peer received %q", got[0])
				}
				line := tt.wantLine
				if tt.err != nil {
					what := "cannot read the listening process's credentials: "
					if network == "tcp" {
						what = "cannot find which user owns the listening socket: "
					}
					line = what + "lookup failed"
					if !errors.Is(res[0].Err, lookupErr) {
						t.Errorf("result error %v does not wrap the lookup's", res[0].Err)
					}
				}
				assertLines(t, logs.Lines(), []string{"ERROR Withheld token from " + b.addr.String() + ": " + line})
			})
		}
	}
}

func TestPeerLookup_withDefaults(t *testing.T) {
	l := peerLookup{}.withDefaults()
	if l.unixUID == nil || l.tcpUID == nil || l.selfUID == nil {
		t.Fatalf("defaults missing: %+v", l)
	}
	if got := l.selfUID(); got != os.Getuid() {
		t.Errorf("selfUID() = %d, want os.Getuid() %d", got, os.Getuid())
	}
	calls := 0
	custom := peerLookup{selfUID: func() int { calls++; return 42 }}.withDefaults()
	if custom.selfUID() != 42 || calls != 1 {
		t.Error("withDefaults replaced an injected lookup")
	}
}

func TestCheckPeer_otherConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	tr := &targetRun{cfg: (&Sender{}).config()}
	if err := tr.checkPeer(a); err == nil || !strings.Contains(err.Error(), "cannot check who listens") {
		t.Errorf("checkPeer(pipe) = %v, want a refusal", err)
	}
}

// The real lookup reads our own uid back from a listener of ours, and
// fails (so the token is withheld) on a connection it cannot ask about.
func TestUnixPeerUID(t *testing.T) {
	b := mustStartBot(t, "unix", always("OK"))
	c, err := net.Dial("unix", b.addr.Addr)
	if err != nil {
		t.Fatal(err)
	}
	uc := c.(*net.UnixConn)
	if uid, err := unixPeerUID(uc); err != nil || uid != os.Getuid() {
		t.Errorf("unixPeerUID = %d, %v; want %d", uid, err, os.Getuid())
	}
	c.Close()
	if uid, err := unixPeerUID(uc); err == nil {
		t.Errorf("unixPeerUID on a closed connection = %d, want an error", uid)
	}
}
