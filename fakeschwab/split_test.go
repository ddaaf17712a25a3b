package fakeschwab

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// noDelay reports whether c has TCP_NODELAY set.
func noDelay(tb testing.TB, c net.Conn) bool {
	tb.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var v int
	var gerr error
	if err := raw.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY) }); err != nil {
		tb.Fatal(err)
	}
	if gerr != nil {
		tb.Fatal(gerr)
	}
	return v != 0
}

func TestNagleListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, nagle := range []bool{false, true} {
		var l net.Listener = ln
		if nagle {
			l = nagleListener{ln}
		}
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got := noDelay(t, c); got == nagle {
			t.Errorf("nagleListener=%v: TCP_NODELAY %v", nagle, got)
		}
		c.Close()
		client.Close()
	}
}

// With SplitWrites the token answer's headers are flushed before the body
// is written; without it they go out with the body.
func TestServer_SplitWrites(t *testing.T) {
	for _, split := range []bool{false, true} {
		s := New(Config{AppKey: "k", AppSecret: "s", CallbackURL: "https://127.0.0.1:8182", SplitWrites: split})
		rt := s.Login().RefreshToken
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		r := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("k:s")))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &tok) != nil || tok.AccessToken == "" {
			t.Fatalf("split=%v: HTTP %d: %s", split, w.Code, w.Body)
		}
		if w.Flushed != split {
			t.Errorf("split=%v: headers flushed before the body: %v", split, w.Flushed)
		}
		if got := w.Header().Get("Content-Length"); got != strconv.Itoa(w.Body.Len()) {
			t.Errorf("Content-Length %q for %d bytes", got, w.Body.Len())
		}
	}
}
