package main_test

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/internal/testkit"
	"github.com/schwabtools/token-refresh-sender/internal/testproc"
)

// Another user who takes the bot's loopback TCP port first: `send` gives
// it nothing, names the address and the uid, and exits 1; with
// --allow-peer-uid the same listener gets the token (the 0 bytes are the
// guard's doing).
func TestSend_withholdsTokenFromAnotherUsersTCPPort(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			sq := testproc.SquatTCP(t, host)
			s := newSandbox(t)
			target := "tcp://" + sq.Addr
			stdout, stderr, code := runToEnd(t, nil, s.args("send", "--socket", target)...)
			want := "ERROR: Withheld token from " + target + ": the process listening there runs as uid 65534, not as this user (uid 0) or root; if it is your bot, pass --allow-peer-uid 65534"
			if code != 1 || !strings.Contains(stdout, want) {
				t.Errorf("send: exit %d, want 1 with %q:\n%s%s", code, want, stdout, stderr)
			}
			if n := sq.NextConn(t); n != 0 {
				t.Errorf("the squatter received %d bytes, want 0", n)
			}
			s.assertNoSecrets(stdout, stderr)

			stdout, _, code = runToEnd(t, nil, s.args("send", "--socket", target, "--allow-peer-uid", "65534")...)
			if code != 0 {
				t.Errorf("send with --allow-peer-uid: exit %d:\n%s", code, stdout)
			}
			if n := sq.NextConn(t); n == 0 {
				t.Error("allowed, the listener still received nothing")
			}
		})
	}
}

// The daemon withholds each token from a squatter's TCP port, logs it, and
// counts it as result="withheld" (a series that exists from the start).
func TestRun_withheldDeliveryIsCounted(t *testing.T) {
	sq := testproc.SquatTCP(t, "127.0.0.1")
	s := newSandbox(t)
	addr := "127.0.0.1:" + strconv.Itoa(testkit.FreePort(t))
	target := "tcp://" + sq.Addr
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("run", "--socket", target, "--metrics-addr", addr)...)
	p.WaitFor("Next refresh at", 1)
	p.WaitFor("ERROR: Withheld token from "+target+": the process listening there runs as uid 65534", 1)
	if n := sq.NextConn(t); n != 0 {
		t.Errorf("the squatter received %d bytes, want 0", n)
	}
	// The result is counted when the delivery has finished, just after
	// its log line: scrape until then.
	const want = `token_sender_delivery_total{result="withheld"} 1`
	body := get(t, "http://"+addr+"/metrics", http.StatusOK)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(body, want) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		body = get(t, "http://"+addr+"/metrics", http.StatusOK)
	}
	if !strings.Contains(body, want) || strings.Contains(body, `result="unknown"`) {
		t.Errorf("/metrics lacks %q:\n%s", want, body)
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(); code != 0 {
		t.Errorf("exit %d", code)
	}
	s.assertNoSecrets(p.Text(), p.Stderr(), body)
}

// The setup: the bot listens on 127.0.0.1:P, another user on
// [::1]:P, and the sender is given tcp://localhost:P. localhost means
// 127.0.0.1 only, so every token reaches the bot and the squatter is
// never even connected to. (Where /etc/hosts maps localhost to 127.0.0.1
// alone this cannot tell the difference; TestParseAddress pins the mapping.)
func TestSend_localhostIsIPv4Only(t *testing.T) {
	sq := testproc.SquatTCP(t, "::1")
	_, port, _ := net.SplitHostPort(sq.Addr)
	b := listenBot(t, "tcp", net.JoinHostPort("127.0.0.1", port), "OK")
	s := newSandbox(t)
	for i := range 3 {
		stdout, stderr, code := runToEnd(t, nil, s.args("send", "--socket", "tcp://localhost:"+port)...)
		if code != 0 || !strings.Contains(stdout, "INFO: Token successfully sent to trading bot") {
			t.Fatalf("send %d: exit %d:\n%s%s", i+1, code, stdout, stderr)
		}
	}
	if got := b.received(); len(got) != 3 {
		t.Errorf("the bot on 127.0.0.1 got %d tokens, want 3", len(got))
	}
	if n := sq.Proc.Count("GOT "); n != 0 {
		t.Errorf("the squatter on [::1] was connected to %d times, want 0", n)
	}
}
