package status_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/delivery"
	"github.com/schwabtools/token-refresh-sender/status"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestMain(m *testing.M) {
	time.Local = time.UTC // the text output shows local time
	os.Exit(m.Run())
}

var now = time.Date(2025, 11, 13, 8, 44, 24, 0, time.UTC)

const (
	accessSecret  = "I0.b2F1dGgyLmJkYy5zY2h3YWIuY29tACCESS-5ecret@"
	refreshSecret = "VEhJUyBJUyBBIFNFQ1JFVA-REFRESH-5ecret@"
)

// tokenJSON is a token file; a nil time leaves its key out.
func tokenJSON(created, issued, expiresAt *time.Time) string {
	var top []string
	if created != nil {
		top = append(top, fmt.Sprintf(`"creation_timestamp": %d`, created.Unix()))
	}
	if issued != nil {
		top = append(top, fmt.Sprintf(`"refresh_token_issued_at": %d`, issued.Unix()))
	}
	tok := []string{`"expires_in": 1800`, `"token_type": "Bearer"`, `"scope": "api"`,
		`"refresh_token": "` + refreshSecret + `"`, `"id_token": "eyJ.id.token"`}
	if expiresAt != nil {
		tok = append(tok, `"access_token": "`+accessSecret+`"`, fmt.Sprintf(`"expires_at": %d`, expiresAt.Unix()))
	}
	top = append(top, `"token": {`+strings.Join(tok, ", ")+`}`)
	return "{" + strings.Join(top, ", ") + "}\n"
}

func at(d time.Duration) *time.Time { t := now.Add(d); return &t }

const day = 24 * time.Hour

func TestCheck(t *testing.T) {
	tests := []struct {
		name      string
		content   *string // nil: no file
		wantState status.State
		wantExit  int
	}{
		{
			name:      "fresh",
			content:   ptr(tokenJSON(at(-5*time.Minute), at(-day), at(25*time.Minute))),
			wantState: status.OK, wantExit: 0,
		},
		{
			name:      "expiring",
			content:   ptr(tokenJSON(at(-5*time.Minute), at(-7*day+11*time.Hour+58*time.Minute), at(25*time.Minute))),
			wantState: status.Warning, wantExit: 1,
		},
		{
			name:      "expiring_access_expired",
			content:   ptr(tokenJSON(at(-40*time.Minute), at(-7*day+3*time.Hour), at(-10*time.Minute))),
			wantState: status.Warning, wantExit: 1,
		},
		{
			name:      "refresh_expired",
			content:   ptr(tokenJSON(at(-day), at(-8*day), at(-day+30*time.Minute))),
			wantState: status.Critical, wantExit: 2,
		},
		{
			name:      "access_expired",
			content:   ptr(tokenJSON(at(-35*time.Minute), at(-2*day), at(-5*time.Minute))),
			wantState: status.Warning, wantExit: 1,
		},
		{
			name:      "no_access_token",
			content:   ptr(tokenJSON(at(-time.Minute), at(-time.Minute), nil)),
			wantState: status.Warning, wantExit: 1,
		},
		{
			name:      "unknown_age",
			content:   ptr(tokenJSON(at(-5*time.Minute), nil, at(25*time.Minute))),
			wantState: status.Warning, wantExit: 1,
		},
		{
			name:      "unknown_age_access_expired",
			content:   ptr(tokenJSON(nil, nil, at(-3*time.Hour))),
			wantState: status.Warning, wantExit: 1,
		},
		{
			name:      "corrupt",
			content:   ptr(`{"creation_timestamp": 1762983055, "token": {`),
			wantState: status.Unknown, wantExit: 3,
		},
		{
			name:      "no_refresh_token",
			content:   ptr(`{"creation_timestamp": 1762983055, "token": {"access_token": "x"}}`),
			wantState: status.Critical, wantExit: 2,
		},
		{
			name:      "missing",
			wantState: status.Critical, wantExit: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "schwab_tokens.json")
			if tt.content != nil {
				if err := os.WriteFile(path, []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := status.Check(path, nil, 0, now)
			if r.State != tt.wantState || r.ExitCode() != tt.wantExit {
				t.Errorf("state %q exit %d, want %q exit %d (message: %s)", r.State, r.ExitCode(), tt.wantState, tt.wantExit, r.Message)
			}
			checkGolden(t, tt.name, r, strings.NewReplacer(dir, "$DIR"))
		})
	}
}

func TestCheck_lifetime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	content := tokenJSON(at(-time.Minute), at(-2*time.Hour), at(29*time.Minute))
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		lifetime time.Duration
		want     status.State
	}{
		{0, status.OK},                   // default 7 days
		{25 * time.Hour, status.Warning}, // 23 hours left
		{2 * time.Hour, status.Critical}, // just expired
	}
	for _, tt := range tests {
		t.Run(tt.lifetime.String(), func(t *testing.T) {
			r := status.Check(path, nil, tt.lifetime, now)
			if r.State != tt.want {
				t.Errorf("lifetime %v: state %q, want %q (%s)", tt.lifetime, r.State, tt.want, r.Message)
			}
			if want := now.Add(-2 * time.Hour).Add(cmpLifetime(tt.lifetime)); !r.RefreshTokenExpiresAt.Equal(want) {
				t.Errorf("RefreshTokenExpiresAt = %v, want %v", r.RefreshTokenExpiresAt, want)
			}
		})
	}
}

// An unknown login time is a warning whatever else holds, and the message
// names the configured lifetime and both ways to fix it.
func TestCheck_unknownAgeIsWarning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte(tokenJSON(at(-time.Minute), nil, at(29*time.Minute))), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		lifetime time.Duration
		want     string
	}{
		{0, "its expiry 7 days after the login cannot be tracked"},
		{-time.Hour, "its expiry 7 days after the login cannot be tracked"},
		{25 * time.Hour, "its expiry 1 day 1 hour after the login cannot be tracked"},
	} {
		r := status.Check(path, nil, tt.lifetime, now)
		if r.State != status.Warning || r.ExitCode() != 1 {
			t.Errorf("lifetime %v: state %q exit %d, want warning exit 1", tt.lifetime, r.State, r.ExitCode())
		}
		for _, want := range []string{tt.want, "run token-refresh-sender login", "let the running daemon see the next login", "access token valid for 29 minutes"} {
			if !strings.Contains(r.Message, want) {
				t.Errorf("lifetime %v: message %q lacks %q", tt.lifetime, r.Message, want)
			}
		}
		if strings.Contains(r.Message, "\n") || r.RefreshTokenExpiresAt != nil || r.RefreshTokenIssuedAt != nil {
			t.Errorf("lifetime %v: message %q, expires %v, issued %v; want one line and no guessed times", tt.lifetime, r.Message, r.RefreshTokenExpiresAt, r.RefreshTokenIssuedAt)
		}
	}
}

// Durations under a second read "0 seconds", a second reads "1 second",
// and a time equal to now is in the past ("0 seconds ago").
func TestCheck_durationEdges(t *testing.T) {
	base := now.Add(-day) // login a day ago: the refresh token is fine
	tests := []struct {
		name      string
		checkedAt time.Time
		expiresAt time.Time
		want      []string
	}{
		{"one second left", now, now.Add(time.Second), []string{"access token valid for 1 second", "(in 1 second)", "Last refresh:          2025-11-13 08:44:24 (0 seconds ago)"}},
		{"expired a second ago", now, now.Add(-time.Second), []string{"The access token expired 1 second ago", "(expired 1 second ago)"}},
		{"half a second left", now.Add(-500 * time.Millisecond), now, []string{"access token valid for 0 seconds", "(in 0 seconds)"}},
		{"expired half a second ago", now.Add(500 * time.Millisecond), now, []string{"The access token expired 0 seconds ago", "(expired 0 seconds ago)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.json")
			if err := os.WriteFile(path, []byte(tokenJSON(ptr(now), &base, &tt.expiresAt)), 0o600); err != nil {
				t.Fatal(err)
			}
			r := status.Check(path, nil, 0, tt.checkedAt)
			var text bytes.Buffer
			if err := r.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.want {
				if !strings.Contains(text.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, text.String())
				}
			}
		})
	}
}

func cmpLifetime(d time.Duration) time.Duration {
	if d == 0 {
		return 7 * day
	}
	return d
}

func TestCheck_sockets(t *testing.T) {
	dir, err := os.MkdirTemp("", "trs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	live := filepath.Join(dir, "live.sock")
	unixReceived := make(chan int, 4)
	mustListen(t, "unix", live, unixReceived)

	stale := filepath.Join(dir, "stale.sock")
	sl, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	sl.(*net.UnixListener).SetUnlinkOnClose(false)
	sl.Close() // the file stays, nobody listens

	regular := filepath.Join(dir, "regular.sock")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	tcpReceived := make(chan int, 4)
	tl := mustListen(t, "tcp", "127.0.0.1:0", tcpReceived)
	closedTCP, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedTCP.Close()

	addrs := []string{live, filepath.Join(dir, "missing.sock"), stale, regular,
		"tcp://" + tl.Addr().String(), "tcp://" + closedTCP.Addr().String()}
	var sockets []delivery.Address
	for _, s := range addrs {
		a, err := delivery.ParseAddress(s)
		if err != nil {
			t.Fatal(err)
		}
		sockets = append(sockets, a)
	}
	file := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(file, []byte(tokenJSON(at(-5*time.Minute), at(-day), at(25*time.Minute))), 0o600); err != nil {
		t.Fatal(err)
	}

	r := status.Check(file, sockets, 0, now)
	if r.State != status.OK {
		t.Errorf("state %q, want ok: sockets do not change the state", r.State)
	}
	// The TCP listener saw one connection that sent nothing.
	if n := <-tcpReceived; n != 0 {
		t.Errorf("a probe sent %d bytes, want 0", n)
	}
	// The Unix one was found in /proc/net/unix and saw no connection: the
	// first connection it accepts is this marker, sent after Check returned
	// (one listener serves its connections in order).
	c, err := net.Dial("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("mark")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := <-unixReceived; n != len("mark") {
		t.Errorf("the Unix listener's first connection sent %d bytes, not the marker: the probe connected to it instead of leaving it alone", n)
	}
	checkGolden(t, "sockets", r, strings.NewReplacer(
		dir, "$DIR",
		tl.Addr().String(), "127.0.0.1:LIVE",
		closedTCP.Addr().String(), "127.0.0.1:CLOSED",
	))
}

// mustListen listens on addr and reports, for each connection, how many
// bytes the peer sent before closing.
func mustListen(tb testing.TB, network, addr string, received chan<- int) net.Listener {
	tb.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(c)
			c.Close()
			received <- buf.Len()
		}
	}()
	return l
}

func TestProbe_timeout(t *testing.T) {
	// Nothing answers on a TEST-NET address; a zero-ish timeout must win.
	s := status.Probe(delivery.Address{Network: "tcp", Addr: "192.0.2.1:9"}, time.Nanosecond)
	if s.Accepting || s.Error == "" {
		t.Errorf("got %+v, want not accepting with a reason", s)
	}
}

// checkGolden compares the text and JSON output with testdata/<name>.txt
// and .json, after rep has replaced the paths that change per run.
func checkGolden(tb testing.TB, name string, r status.Report, rep *strings.Replacer) {
	tb.Helper()
	var text, js bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		tb.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		tb.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(js.Bytes(), &obj); err != nil {
		tb.Fatalf("WriteJSON wrote invalid JSON: %v\n%s", err, js.Bytes())
	}
	if bytes.Count(js.Bytes(), []byte("\n")) != 1 {
		tb.Errorf("WriteJSON wrote more than one line:\n%s", js.Bytes())
	}
	for _, out := range []string{text.String(), js.String()} {
		if strings.Contains(out, accessSecret) || strings.Contains(out, refreshSecret) {
			tb.Errorf("output contains a token:\n%s", out)
		}
	}
	for ext, got := range map[string]string{".txt": rep.Replace(text.String()), ".json": rep.Replace(js.String())} {
		path := filepath.Join("testdata", name+ext+".golden")
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			tb.Fatalf("%v (run go test -update to create it)", err)
		}
		if got != string(want) {
			tb.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func FuzzCheck(f *testing.F) {
	f.Add(tokenJSON(at(-5*time.Minute), at(-day), at(25*time.Minute)))
	f.Add(tokenJSON(nil, nil, at(-3*time.Hour)))
	f.Add(`{"creation_timestamp": 1e300, "refresh_token_issued_at": -1, "token": {"refresh_token": "r"}}`)
	f.Add(`{"refresh_token_issued_at": 253402300799, "token": {"refresh_token": "r", "expires_at": 0}}`)
	f.Add(`{"token": {"refresh_token": "` + refreshSecret + `", "access_token": "` + accessSecret + `", "expires_at": "soon"}}`)
	f.Add(`[]`)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		path := filepath.Join(dir, "tokens.json")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		r := status.Check(path, nil, 0, now)
		if code := r.ExitCode(); code < 0 || code > 3 || r.Message == "" {
			t.Fatalf("exit %d, message %q", code, r.Message)
		}
		var text, js bytes.Buffer
		if err := r.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		if !json.Valid(js.Bytes()) {
			t.Fatalf("invalid JSON: %s", js.Bytes())
		}
		for _, out := range []string{text.String(), js.String()} {
			if strings.Contains(out, accessSecret) || strings.Contains(out, refreshSecret) {
				t.Fatalf("output contains a token:\n%s", out)
			}
		}
	})
}
