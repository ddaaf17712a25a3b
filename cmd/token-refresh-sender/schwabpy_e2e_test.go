package main_test

// Issue 12: the daemon shares its token file with schwab-py, which rewrites
// the file in place (open(path, "w"), no temp file, no lock), keeps only
// creation_timestamp and token, and may do so far more often than the
// daemon's watcher settles. These tests play that writer against the real
// binary while a reader polls the file, and check what the operator sees:
// the log, the file and `status`.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/internal/testkit"
	"github.com/schwabtools/token-refresh-sender/internal/testproc"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// window is when a file was torn: from before open(O_TRUNC) to after the
// last byte was written and the file closed (monotonic clock readings).
type window struct{ from, to time.Time }

// schwabPy rewrites the token file in place, the way schwab-py's
// token_write_func does, until stopped: truncate on open, then the JSON in
// two writes with a pause between them so that readers can catch the file
// empty or cut in half. Every write drops refresh_token_issued_at and every
// key but creation_timestamp and token.
type schwabPy struct {
	t     *testing.T
	path  string
	pause time.Duration             // between the two halves: the torn state readers can see
	every func() time.Duration      // between writes
	mu    sync.Mutex                // guards what follows
	tok   tokensender.Token         // what the next write holds
	torn  []window                  // every write's window
	wrote chan struct{}             // receives (buffer 1) after each write
	first map[string]chan time.Time // refresh token -> when the first write holding it was complete
	stop  chan struct{}
	done  chan struct{}
}

// startSchwabPy starts writing tok to path; the writer stops at the end of
// the test at the latest.
func startSchwabPy(t *testing.T, path string, tok tokensender.Token, pause time.Duration, every func() time.Duration) *schwabPy {
	t.Helper()
	w := &schwabPy{t: t, path: path, pause: pause, every: every, tok: tok,
		wrote: make(chan struct{}, 1), first: map[string]chan time.Time{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	t.Cleanup(w.halt)
	return w
}

// between returns a random pause in [lo, hi): writes at an irregular pace,
// as a dashboard's requests come.
func between(lo, hi time.Duration) func() time.Duration {
	return func() time.Duration { return lo + rand.N(hi-lo) }
}

func (w *schwabPy) run() {
	defer close(w.done)
	for {
		w.mu.Lock()
		tok := w.tok
		w.mu.Unlock()
		data := schwabPyJSON(tok, time.Now())
		from := time.Now()
		if err := w.writeInPlace(data); err != nil {
			w.t.Errorf("schwab-py style write: %v", err)
			return
		}
		to := time.Now()
		w.mu.Lock()
		w.torn = append(w.torn, window{from, to})
		if c, ok := w.first[tok.RefreshToken]; ok {
			select {
			case c <- to:
			default: // already reported
			}
		}
		w.mu.Unlock()
		select {
		case w.wrote <- struct{}{}:
		default:
		}
		select {
		case <-w.stop:
			return
		case <-time.After(w.every()):
		}
	}
}

// writeInPlace is Python's `with open(path, "w") as f: json.dump(doc, f)`,
// cut in two.
func (w *schwabPy) writeInPlace(data []byte) error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	half := len(data) / 2
	if _, err := f.Write(data[:half]); err != nil {
		f.Close()
		return err
	}
	time.Sleep(w.pause) // the torn state, for readers to see
	if _, err := f.Write(data[half:]); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// schwabPyJSON is what schwab-py writes: creation_timestamp and token only.
func schwabPyJSON(tok tokensender.Token, now time.Time) []byte {
	data, err := json.Marshal(map[string]any{
		"creation_timestamp": now.Unix(),
		"token": map[string]any{
			"expires_in": tok.ExpiresIn, "token_type": "Bearer", "scope": "api",
			"refresh_token": tok.RefreshToken, "access_token": tok.AccessToken,
			"id_token": tok.IDToken, "expires_at": tok.ExpiresAt.Unix(),
		},
	})
	if err != nil {
		panic(err) // strings and numbers only
	}
	return data
}

// writes is how many writes are complete.
func (w *schwabPy) writes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.torn)
}

// waitWrites blocks until n writes in all are complete (a bounded wait on
// the writer's progress, not on a timer).
func (w *schwabPy) waitWrites(n int) {
	w.t.Helper()
	deadline := time.After(testproc.WaitLimit)
	for w.writes() < n {
		select {
		case <-w.wrote:
		case <-w.done:
			w.t.Fatalf("the schwab-py writer stopped after %d writes, want %d", w.writes(), n)
		case <-deadline:
			w.t.Fatalf("the schwab-py writer made %d writes in %v, want %d", w.writes(), testproc.WaitLimit, n)
		}
	}
}

// switchTo makes the following writes hold tok; the channel receives when
// the first complete write holding it was done.
func (w *schwabPy) switchTo(tok tokensender.Token) <-chan time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := make(chan time.Time, 1)
	w.first[tok.RefreshToken] = c
	w.tok = tok
	return c
}

// halt stops the writer after its current write and waits for it.
func (w *schwabPy) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// tornDuring reports whether one of the writer's windows overlaps [from, to].
func (w *schwabPy) tornDuring(from, to time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, win := range w.torn {
		if !from.After(win.to) && !to.Before(win.from) {
			return true
		}
	}
	return false
}

// badRead is a read of the token file that did not give a valid token file.
type badRead struct {
	from, to time.Time
	err      error
}

// fileReader polls the token file as a dashboard would, recording every
// read that does not parse.
type fileReader struct {
	path  string
	mu    sync.Mutex
	reads int
	bad   []badRead
	stop  chan struct{}
	done  chan struct{}
}

func startReader(t *testing.T, path string) *fileReader {
	r := &fileReader{path: path, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			from := time.Now()
			data, err := os.ReadFile(path)
			if err == nil {
				_, err = tokenfile.Parse(path, data)
			}
			to := time.Now()
			r.mu.Lock()
			r.reads++
			if err != nil {
				r.bad = append(r.bad, badRead{from, to, err})
			}
			r.mu.Unlock()
			select {
			case <-r.stop:
				return
			default:
				// A short pause leaves the CPU to the daemon; the torn
				// windows last milliseconds, so this reader still sees them.
				time.Sleep(200 * time.Microsecond)
			}
		}
	}()
	t.Cleanup(func() { r.halt() })
	return r
}

// halt stops the reader and returns how many reads it made and the bad ones.
func (r *fileReader) halt() (reads int, bad []badRead) {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads, append([]badRead(nil), r.bad...)
}

// assertOnlyForeignTorn fails for every bad read that no foreign write
// explains: a torn file the daemon produced. It returns how many bad reads
// the writer explains.
func assertOnlyForeignTorn(t *testing.T, w *schwabPy, bad []badRead) int {
	t.Helper()
	explained := 0
	for _, b := range bad {
		if w != nil && w.tornDuring(b.from, b.to) {
			explained++
			continue
		}
		t.Errorf("a reader saw a bad token file while no other program was writing it (the daemon wrote it in place?): %v", b.err)
	}
	return explained
}

// statusLine runs `status` and returns its exit code and first line.
func statusLine(t *testing.T, s *sandbox) (int, string) {
	t.Helper()
	stdout, stderr, code := runToEnd(t, nil, s.args("status")...)
	s.assertNoSecrets(stdout, stderr)
	first, _, _ := strings.Cut(stdout, "\n")
	return code, first
}

const (
	statusExpiresIn  = "WARNING: Refresh token expires in "
	statusAgeUnknown = "WARNING: Refresh token age unknown (refresh_token_issued_at missing): its expiry"
	newLoginLine     = "The token file has a new refresh token (a new login); refreshing now"
)

// assertQuietLog fails for any ERROR line in the daemon's output and for a
// token-file complaint of the kind a torn read would cause.
func assertQuietLog(t *testing.T, p *testproc.Proc) {
	t.Helper()
	for _, l := range p.Output() {
		if strings.Contains(l, "ERROR") || strings.Contains(l, "is empty") || strings.Contains(l, "malformed JSON") ||
			strings.Contains(l, "being written") || strings.Contains(l, "kept rewriting") {
			t.Errorf("the daemon complained while another program was writing the file:\n%s", l)
		}
	}
}

// schwab-py rewrites the file in place every 20-50 ms while the daemon
// refreshes: no error is logged for what readers see mid-write, `status`
// keeps warning (expiry known, or age unknown; never OK, never "cannot
// read"), and the daemon's next save puts the login time back.
func TestRun_schwabPyInPlaceWritesWhileRefreshing(t *testing.T) {
	s := newSandbox(t)
	// Logged in 6.5 days ago: under 12 hours left, a warning. (Five
	// minutes more, so that every message reads "11 hours ...".)
	loggedIn := time.Now().Add(-(6*24+12)*time.Hour - 5*time.Minute).Truncate(time.Second)
	if err := tokenfile.Write(s.tokenFile, tokenfile.New(s.login, loggedIn)); err != nil {
		t.Fatal(err)
	}
	b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
	metricsAddr := "127.0.0.1:" + strconv.Itoa(testkit.FreePort(t))
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("run", "--socket", b.path, "--metrics-addr", metricsAddr)...)
	p.WaitFor("Next refresh at", 1)
	if code, first := statusLine(t, s); code != 1 || !strings.HasPrefix(first, statusExpiresIn) {
		t.Errorf("status before schwab-py writes: exit %d %q, want 1 %q...", code, first, statusExpiresIn)
	}

	reader := startReader(t, s.tokenFile)
	// Torn for 10 ms of every 30-60: about one read in five lands
	// mid-write, so a reader that does not retry is caught.
	w := startSchwabPy(t, s.tokenFile, s.login, 10*time.Millisecond, between(20*time.Millisecond, 50*time.Millisecond))
	// Refresh on request while the writes go on: each refresh loads the
	// file (perhaps mid-write) under the lock and saves it, and the
	// watcher reports the writes several times a second.
	const refreshes = 5
	for i := 1; i <= refreshes; i++ {
		w.waitWrites(15 * i)
		p.Signal(syscall.SIGUSR1)
		p.WaitFor("Next refresh at", 1+i)
		// The file holds the login time (the daemon saved last) or not
		// (schwab-py did): either way a warning, never OK, and never
		// "cannot read" (exit 3) for a file caught mid-write.
		for range 3 {
			code, first := statusLine(t, s)
			if code != 1 || !(strings.HasPrefix(first, statusExpiresIn) || strings.HasPrefix(first, statusAgeUnknown)) {
				t.Errorf("status during schwab-py writes: exit %d %q, want 1 with the expiry or the unknown age", code, first)
			}
			// Scripts get a whole access token, never an error, mid-write.
			stdout, stderr, code := runToEnd(t, nil, s.args("token")...)
			if got := strings.TrimSuffix(stdout, "\n"); code != 0 || !s.fake.ValidAccessToken(got) {
				t.Errorf("token during schwab-py writes: exit %d, a valid access token %v; stderr: %s", code, s.fake.ValidAccessToken(got), stderr)
			}
		}
	}
	w.waitWrites(15*refreshes + 10)
	w.halt()

	// schwab-py wrote last: the login time is gone until the daemon saves.
	if _, ok := loginTime(t, s.tokenFile); ok {
		t.Fatal("the schwab-py style write kept refresh_token_issued_at")
	}
	// The daemon still knows it: the expiry metric stays.
	expires := loggedIn.Add(7 * 24 * time.Hour).Unix()
	if got, ok := refreshExpiryMetric(t, metricsAddr); !ok || got != expires {
		t.Errorf("refresh-token expiry metric = %d (present %v), want %d", got, ok, expires)
	}
	if code, first := statusLine(t, s); code != 1 || !strings.HasPrefix(first, statusAgeUnknown) ||
		!strings.Contains(first, "run token-refresh-sender login, or let the running daemon see the next login") {
		t.Errorf("status after a schwab-py write: exit %d %q, want 1 %q... with the fix", code, first, statusAgeUnknown)
	}
	p.Signal(syscall.SIGUSR1)
	p.WaitFor("Next refresh at", refreshes+2)
	if got, ok := loginTime(t, s.tokenFile); !ok || !got.Equal(loggedIn) {
		t.Errorf("after the daemon's save the login time is %v (present %v), want %v back", got, ok, loggedIn)
	}
	if code, first := statusLine(t, s); code != 1 || !strings.HasPrefix(first, statusExpiresIn+"11 hours") {
		t.Errorf("status after the daemon's save: exit %d %q, want 1 %q...", code, first, statusExpiresIn+"11 hours")
	}

	p.Signal(syscall.SIGINT)
	if code := p.Wait(); code != 0 {
		t.Errorf("daemon exit %d, want 0", code)
	}
	reads, bad := reader.halt()
	explained := assertOnlyForeignTorn(t, w, bad)
	t.Logf("%d schwab-py writes, %d reads, %d caught mid-write", w.writes(), reads, explained)
	if explained == 0 {
		t.Errorf("the reader never caught the file mid-write in %d reads: the test did not exercise torn reads", reads)
	}

	assertQuietLog(t, p)
	// The daemon always knew the login time: one expiry warning at start,
	// never an unknown-age notice, never a second warning for a "new"
	// login time.
	if n := p.Count(statusExpiresIn + "11 hours"); n != 1 {
		t.Errorf("%d expiry warnings in the log, want 1:\n%s", n, p.Text())
	}
	if n := p.Count("Refresh token age unknown"); n != 0 {
		t.Errorf("the daemon logged an unknown refresh-token age %d time(s):\n%s", n, p.Text())
	}
	if n := p.Count(newLoginLine); n != 0 {
		t.Errorf("schwab-py's rewrites of the same refresh token were taken for a new login %d time(s)", n)
	}
	st := s.fake.Stats()
	if want := refreshes + 2; st.Refreshes != want || st.Rejected != 0 || p.Count("Token refreshed successfully") != want {
		t.Errorf("fake Schwab saw %d refreshes (%d rejected), the log %d, want %d", st.Refreshes, st.Rejected, p.Count("Token refreshed successfully"), want)
	}
	s.assertNoSecrets(p.Text(), p.Stderr())
}

// A login made through schwab-py, written in place into the daemon's file
// while schwab-py keeps writing every 50 ms, is noticed within a second:
// the daemon refreshes with the new refresh token and dates the login when
// it saw it.
func TestRun_newLoginAmidSchwabPyWritesNoticedWithin1s(t *testing.T) {
	s := newSandbox(t)
	b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("run", "--socket", b.path)...)
	p.WaitFor("Next refresh at", 1)

	reader := startReader(t, s.tokenFile)
	every50ms := func() time.Duration { return 50 * time.Millisecond }
	w := startSchwabPy(t, s.tokenFile, s.login, 5*time.Millisecond, every50ms)
	w.waitWrites(10)
	fresh := s.fake.Login() // supersedes s.login's refresh token
	var written time.Time
	select {
	case written = <-w.switchTo(fresh):
	case <-time.After(testproc.WaitLimit):
		t.Fatal("schwab-py never wrote the new login")
	}
	p.WaitFor(newLoginLine, 1)
	// The issue asks for "within 1 s". Measured from the end of the first
	// write holding the new refresh token to the moment this test read the
	// daemon's line; the design needs at most 250 ms (the watcher's
	// deadline) plus ~100 ms of torn-read retries. The bound is 1 s plus
	// 1 s of slack because this runs as a subprocess on a shared, loaded
	// 2-core machine where scheduling alone can cost hundreds of
	// milliseconds; a watcher that waits for quiet (the bug the issue
	// reports) never reports while the writes go on and fails this outright.
	took := time.Since(written)
	t.Logf("new login noticed %v after schwab-py wrote it", took)
	if limit := 2 * time.Second; took > limit {
		t.Errorf("the new login was noticed %v after it was written, want within 1 s (limit with slack %v)", took, limit)
	}
	p.WaitFor("Next refresh at", 2)
	w.waitWrites(w.writes() + 10) // the writes go on after the new login
	w.halt()
	// Saved once more with nobody else writing, the file holds the new
	// refresh token and the login time the daemon recorded when it saw it.
	p.Signal(syscall.SIGUSR1)
	p.WaitFor("Next refresh at", 3)
	p.Signal(syscall.SIGINT)
	if code := p.Wait(); code != 0 {
		t.Errorf("daemon exit %d, want 0", code)
	}
	seenBy := time.Now()

	doc, err := tokenfile.Load(s.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	tok := doc.Token()
	if tok.RefreshToken != fresh.RefreshToken || !s.fake.ValidAccessToken(tok.AccessToken) || tok.AccessToken == fresh.AccessToken {
		t.Error("the token file does not hold a token refreshed from the new login")
	}
	if got, ok := doc.RefreshTokenIssuedAt(); !ok || got.Before(written.Truncate(time.Second)) || got.After(seenBy) {
		t.Errorf("login time %v (present %v), want when the daemon saw the new login, between %v and %v", got, ok, written, seenBy)
	}
	// Schwab superseded the old refresh token at the login, so refreshes
	// that succeeded without a rejection after it used the new one.
	st := s.fake.Stats()
	if st.Refreshes != 3 || st.Rejected != 0 {
		t.Errorf("fake Schwab saw %d refreshes and %d rejections, want 3 and 0 (the last two with the new refresh token)", st.Refreshes, st.Rejected)
	}
	if n := p.Count(newLoginLine); n != 1 {
		t.Errorf("the new login was reported %d times, want once", n)
	}
	if msgs := b.received(); len(msgs) != 3 || !bytes.Contains(msgs[1], []byte(fresh.RefreshToken)) {
		t.Errorf("the bot received %d messages, want 3, the second with the new refresh token", len(msgs))
	}

	reads, bad := reader.halt()
	explained := assertOnlyForeignTorn(t, w, bad)
	t.Logf("%d schwab-py writes, %d reads, %d caught mid-write", w.writes(), reads, explained)
	assertQuietLog(t, p)
	s.assertNoSecrets(p.Text(), p.Stderr())
}

// The daemon itself never leaves a torn file: with nobody else writing, a
// reader polling the file through many refreshes always gets a whole token
// file, and each save replaces the file (a new inode) instead of rewriting
// the one a reader may hold open.
func TestRun_daemonNeverWritesTornFile(t *testing.T) {
	s := newSandbox(t)
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("run", "--socket", filepath.Join(s.dir, "none.sock"))...)
	p.WaitFor("Next refresh at", 1)
	reader := startReader(t, s.tokenFile)
	const refreshes = 20
	for i := 1; i <= refreshes; i++ {
		f, err := os.Open(s.tokenFile)
		if err != nil {
			t.Fatal(err)
		}
		before, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		p.Signal(syscall.SIGUSR1)
		p.WaitFor("Next refresh at", 1+i)
		// What a reader opened before the save must be untouched by it:
		// an in-place rewrite would change (or truncate) it under the
		// reader.
		after := make([]byte, len(before)+1)
		n, err := f.ReadAt(after, 0)
		f.Close()
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(after[:n], before) {
			t.Fatalf("refresh %d rewrote the file a reader had open, in place:\nbefore: %s\nafter: %s", i, redactAll(before), redactAll(after[:n]))
		}
		now, err := os.ReadFile(s.tokenFile)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(now, before) {
			t.Fatalf("refresh %d did not change the token file", i)
		}
	}
	p.Signal(syscall.SIGINT)
	if code := p.Wait(); code != 0 {
		t.Errorf("daemon exit %d, want 0", code)
	}
	reads, bad := reader.halt()
	assertOnlyForeignTorn(t, nil, bad) // nobody else wrote: every bad read is the daemon's
	t.Logf("%d reads during %d refreshes", reads, refreshes)
	if reads < refreshes {
		t.Errorf("the reader made only %d reads during %d refreshes", reads, refreshes)
	}
	assertQuietLog(t, p)
}

// refreshExpiryMetric scrapes the refresh token's expiry from /metrics.
func refreshExpiryMetric(t *testing.T, addr string) (int64, bool) {
	t.Helper()
	const name = "token_sender_refresh_token_expiry_timestamp_seconds "
	for _, l := range strings.Split(get(t, "http://"+addr+"/metrics", http.StatusOK), "\n") {
		if v, ok := strings.CutPrefix(l, name); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s%s: %v", name, v, err)
			}
			return int64(f), true
		}
	}
	return 0, false
}

// redactAll shortens every token in a token file's text for a failure
// message.
func redactAll(data []byte) string {
	doc, err := tokenfile.Parse("", data)
	if err != nil {
		return fmt.Sprintf("(%d bytes, not a token file)", len(data))
	}
	out := string(data)
	tok := doc.Token()
	for _, secret := range []string{tok.AccessToken, tok.RefreshToken, tok.IDToken} {
		if secret != "" {
			out = strings.ReplaceAll(out, secret, tokensender.Redact(secret))
		}
	}
	return out
}

// A writer far busier than schwab-py (torn 15 ms of every 16-19, for
// seconds) can keep the file from ever being whole while it is re-read:
// the daemon may say so, but never advises a login for a file that is
// merely being written, even when every re-read catches the same cut-off
// bytes (the writer rewrites the same token).
func TestRun_busyWriterNeverGetsLoginAdvice(t *testing.T) {
	s := newSandbox(t)
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("run", "--socket", filepath.Join(s.dir, "none.sock"))...)
	p.WaitFor("Next refresh at", 1)
	w := startSchwabPy(t, s.tokenFile, s.login, 15*time.Millisecond, between(time.Millisecond, 4*time.Millisecond))
	const refreshes = 5
	for i := 1; i <= refreshes; i++ {
		w.waitWrites(40 * i)
		p.Signal(syscall.SIGUSR1)
		p.WaitFor("Next refresh at", 1+i)
		// A login is advised only in the warning about the refresh
		// token's age (exit 1), never about reading the file (exit 3).
		stdout, _, code := runToEnd(t, nil, s.args("status")...)
		if strings.Contains(stdout, "run token-refresh-sender login") && code != 1 {
			t.Errorf("status advised a login for a file being written (exit %d):\n%s", code, stdout)
		}
	}
	w.halt()
	p.Signal(syscall.SIGINT)
	if code := p.Wait(); code != 0 {
		t.Errorf("daemon exit %d, want 0", code)
	}
	for _, l := range p.Output() {
		if strings.Contains(l, "ERROR") && strings.Contains(l, "login") {
			t.Errorf("the daemon advised a login for a file being written:\n%s", l)
		}
	}
	t.Logf("%d writes; the daemon said %d time(s) that the file kept changing", w.writes(), p.Count("kept rewriting"))
	if st := s.fake.Stats(); st.Refreshes != refreshes+1 || st.Rejected != 0 {
		t.Errorf("fake Schwab saw %d refreshes (%d rejected), want %d", st.Refreshes, st.Rejected, refreshes+1)
	}
}

// schwab-py does not take the lock, so it can write a new login while the
// daemon's refresh is on its way to Schwab, after the daemon read the
// file. The daemon's save must not wipe that login out: the file keeps
// the new refresh token, and the daemon takes it up as a new login.
func TestRun_newLoginWrittenDuringRefreshIsNotOverwritten(t *testing.T) {
	s := newSandbox(t)
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("run", "--socket", filepath.Join(s.dir, "none.sock"))...)
	p.WaitFor("Next refresh at", 1)
	// The next refresh is answered after a second, by which time the
	// daemon has read the file under its lock.
	s.fake.Inject(fakeschwab.FaultLatency(time.Second))
	requests := s.fake.Stats().TokenRequests
	p.Signal(syscall.SIGUSR1)
	for deadline := time.Now().Add(testproc.WaitLimit); s.fake.Stats().TokenRequests == requests; {
		if time.Now().After(deadline) {
			t.Fatal("the daemon's refresh never reached fake Schwab")
		}
		time.Sleep(5 * time.Millisecond) // polling fake Schwab's counter
	}
	// The login Schwab answered after the daemon's refresh: the fake would
	// refuse the daemon's old refresh token at once, so the new login's
	// refresh token is one it never issued (the daemon's refresh with it
	// is refused later; what matters here is that it is not lost).
	login := s.login
	login.RefreshToken = "new-login-refresh-token-0123456789abcdef@"
	w := startSchwabPy(t, s.tokenFile, login, 0, func() time.Duration { return time.Hour })
	w.waitWrites(1)
	w.halt()
	p.WaitFor("Next refresh at", 2)
	p.WaitFor(newLoginLine, 1)
	p.Signal(syscall.SIGINT)
	p.Wait()
	if p.Count("WARNING: token file "+s.tokenFile+": another program wrote a new refresh token into it meanwhile (a new login); left as it is") != 1 {
		t.Errorf("the daemon did not say why it left the file:\n%s", p.Text())
	}
	if got := mustToken(t, s.tokenFile).RefreshToken; got != login.RefreshToken {
		t.Errorf("the daemon's save overwrote the new login written during its refresh: the file holds refresh token %s, want %s",
			tokensender.Redact(got), tokensender.Redact(login.RefreshToken))
	}
}
