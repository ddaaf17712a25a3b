package testproc

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Nobody is the uid (and gid) attack tests act as: another local user.
const Nobody = 65534

// squatScript listens on argv[1] port 0, prints "PORT n", then for each
// connection reads to the end and prints "GOT n" (bytes received).
const squatScript = `
import socket, sys
host = sys.argv[1]
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
s.bind((host, 0))
s.listen(16)
print("PORT", s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    n = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        n += len(b)
    print("GOT", n, flush=True)
    c.close()
`

// TCPSquatter is another user's process listening on a loopback TCP port,
// counting the bytes each connection brings.
type TCPSquatter struct {
	Proc *Proc
	Addr string // host:port it listens on
	seen int
}

// SquatTCP starts a listener on host (an IP literal, port chosen by the
// kernel) running as uid and gid Nobody through setpriv. It needs root,
// setpriv and a python3 that uid Nobody can run; the test is skipped
// without them.
func SquatTCP(tb testing.TB, host string) *TCPSquatter {
	tb.Helper()
	if os.Getuid() != 0 {
		tb.Skip("needs root to start a listener as another uid")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		tb.Skip("setpriv (util-linux) not found")
	}
	if ln, err := net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
		tb.Skipf("cannot listen on %s here: %v", host, err)
	} else {
		ln.Close()
	}
	py := nobodyPython(tb)
	id := strconv.Itoa(Nobody)
	p := Start(tb, "squatter", nil, "setpriv", "--reuid="+id, "--regid="+id, "--clear-groups", py, "-c", squatScript, host)
	p.WaitFor("PORT ", 1)
	port := strings.TrimPrefix(p.Output()[0], "PORT ")
	return &TCPSquatter{Proc: p, Addr: net.JoinHostPort(host, port)}
}

// NextConn waits for the next connection to end and returns how many bytes
// it brought.
func (s *TCPSquatter) NextConn(tb testing.TB) int {
	tb.Helper()
	s.seen++
	s.Proc.WaitFor("GOT ", s.seen)
	var got []string
	for _, l := range s.Proc.Output() {
		if strings.HasPrefix(l, "GOT ") {
			got = append(got, l)
		}
	}
	n, err := strconv.Atoi(strings.TrimPrefix(got[s.seen-1], "GOT "))
	if err != nil {
		tb.Fatalf("squatter printed %q", got[s.seen-1])
	}
	return n
}

// nobodyPython finds a python3 that uid Nobody may run (a pyenv shim under
// /root is not one).
func nobodyPython(tb testing.TB) string {
	tb.Helper()
	candidates := []string{"/usr/bin/python3", "/usr/local/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	id := strconv.Itoa(Nobody)
	for _, py := range candidates {
		if exec.Command("setpriv", "--reuid="+id, "--regid="+id, "--clear-groups", py, "-c", "pass").Run() == nil {
			return py
		}
	}
	tb.Skip("no python3 that uid 65534 can run")
	return ""
}
