package login

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/config"
	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/schwab"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

func TestRun_Success(t *testing.T) {
	for _, existing := range []bool{false, true} {
		t.Run("existing="+strconv.FormatBool(existing), func(t *testing.T) {
			e := newEnv(t)
			if existing {
				writeOldFile(t, e.tokenFile)
			}
			r := start(t, t.Context(), e.options())
			authURL := r.ready(t)
			hc := e.browser(t)
			loc := e.consent(t, hc, authURL, "allow", nil)
			code := codeOf(t, loc)
			if !strings.Contains(loc, "%40") || !strings.HasSuffix(code, "@") {
				t.Fatalf("fake Schwab's redirect should carry a code ending in %%40: %s", loc)
			}
			status, body := get(t, hc, loc)
			res, err := r.wait(t)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if status != http.StatusOK || !strings.Contains(body, "<title>token-refresh-sender - Logged in</title>") ||
				!strings.Contains(body, `<p id="result">Login complete. You can close this tab.</p>`) {
				t.Errorf("success page: HTTP %d:\n%s", status, body)
			}

			fi, err := os.Stat(e.tokenFile)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("token file mode = %04o, want 0600", fi.Mode().Perm())
			}
			doc, err := tokenfile.Load(e.tokenFile)
			if err != nil {
				t.Fatal(err)
			}
			now := e.clock.Now()
			if issued, ok := doc.RefreshTokenIssuedAt(); !ok || !issued.Equal(now) {
				t.Errorf("refresh_token_issued_at = %v, %v; want %v", issued, ok, now)
			}
			if !doc.CreatedAt().Equal(now) {
				t.Errorf("creation_timestamp = %v, want %v", doc.CreatedAt(), now)
			}
			tok := doc.Token()
			if !e.fake.ValidAccessToken(tok.AccessToken) {
				t.Errorf("the saved access token is not accepted by fake Schwab")
			}
			if !sameToken(tok, res.Token) {
				t.Errorf("saved token differs from Result.Token")
			}
			// The login updates the existing document: other tools' keys stay.
			raw, err := os.ReadFile(e.tokenFile)
			if err != nil {
				t.Fatal(err)
			}
			var top struct {
				OtherTool *struct{ Keep bool } `json:"other_tool"`
			}
			if err := json.Unmarshal(raw, &top); err != nil {
				t.Fatal(err)
			}
			if kept := top.OtherTool != nil && top.OtherTool.Keep; kept != existing {
				t.Errorf("other_tool kept = %v, want %v:\n%s", kept, existing, raw)
			}
			if _, err := e.client.Refresh(t.Context(), tok.RefreshToken); err != nil {
				t.Errorf("the saved refresh token does not refresh: %v", err)
			}
			if st := e.fake.Stats(); st.Exchanges != 1 {
				t.Errorf("exchanges = %d, want 1", st.Exchanges)
			}

			if res.TokenFile != e.tokenFile || !res.LoggedInAt.Equal(now) ||
				!res.RefreshTokenExpiresAt.Equal(now.Add(DefaultRefreshTokenLifetime)) {
				t.Errorf("Result = %+v", res)
			}
			wantSummary := "Logged in: tokens saved to " + e.tokenFile + "; access token " + tok.AccessToken[:8] +
				"... expires at 2025-11-13 09:14:24; refresh token must be renewed by 2025-11-20 08:44:24 (7 days)"
			if got := res.Summary(); got != wantSummary {
				t.Errorf("Summary:\n got %s\nwant %s", got, wantSummary)
			}

			logs := e.logs.String()
			for _, want := range []string{
				"Open this URL in your browser to log in to Schwab:",
				"Waiting for the login callback on " + e.app.CallbackURL + " ...",
				"Received authorization code, exchanging it for tokens...",
				"Token file written: " + e.tokenFile,
			} {
				if !strings.Contains(logs, want) {
					t.Errorf("logs lack %q:\n%s", want, logs)
				}
			}
			if got := e.out.String(); got != authURL+"\n" {
				t.Errorf("Out = %q, want the authorize URL on a line of its own", got)
			}
			assertNoSecrets(t, []string{tok.AccessToken, tok.RefreshToken, tok.IDToken, code, testAppSecret},
				map[string]string{"logs": logs, "out": e.out.String(), "page": body, "summary": res.Summary()})
		})
	}
}

func TestRun_Failures(t *testing.T) {
	tests := []struct {
		name    string
		env     []envOption
		browse  func(t *testing.T, e *env, hc *http.Client, authURL string) (status int, body string)
		wantIs  error
		wantErr []string
	}{
		{
			name: "denied",
			browse: func(t *testing.T, e *env, hc *http.Client, authURL string) (int, string) {
				return get(t, hc, e.consent(t, hc, authURL, "deny", nil))
			},
			wantIs:  ErrDenied,
			wantErr: []string{"login was denied in the browser (access_denied); run login again and click Allow"},
		},
		{
			name: "code expired",
			browse: func(t *testing.T, e *env, hc *http.Client, authURL string) (int, string) {
				loc := e.consent(t, hc, authURL, "allow", nil)
				e.clock.Advance(fakeschwab.DefaultCodeLifetime + time.Second)
				return get(t, hc, loc)
			},
			wantIs: ErrExchange,
			wantErr: []string{"the authorization code expired before it could be exchanged (it lives about 30 seconds); run login again and finish within 30 seconds",
				"was not changed"},
		},
		{
			name: "redirect mismatch",
			env: []envOption{func(cfg *fakeschwab.Config, _ *config.App, _ *schwab.Client) {
				cfg.CallbackURL += "/registered"
			}},
			browse: func(t *testing.T, e *env, hc *http.Client, authURL string) (int, string) {
				// The user's app is registered with another callback than
				// callback_url; Schwab redirects to the registered one.
				loc := e.consent(t, hc, authURL, "allow", map[string]string{"redirect_uri": e.app.CallbackURL + "/registered"})
				return get(t, hc, loc)
			},
			wantIs: ErrExchange,
			wantErr: []string{"Schwab rejected the redirect URI: callback_url in configs/schwab_app_config.yaml must match your app's registered callback URL exactly",
				"Redirect URI mismatch"},
		},
		{
			name: "hostile token answer",
			browse: func(t *testing.T, e *env, hc *http.Client, authURL string) (int, string) {
				loc := e.consent(t, hc, authURL, "allow", nil)
				e.fake.Inject(fakeschwab.FaultStatus(200, "application/json",
					`{"access_token":"`+strings.Repeat("A", 1<<20-100)+`","refresh_token":"r@","expires_in":1800}`, nil))
				return get(t, hc, loc)
			},
			wantIs: ErrExchange,
			wantErr: []string{"(Schwab: invalid token response: access_token is 1048476 bytes, longer than the 4096 allowed)",
				"was not changed"},
		},
		{
			name: "bad app secret",
			env: []envOption{func(_ *fakeschwab.Config, _ *config.App, c *schwab.Client) {
				c.AppSecret = "wrong-secret"
			}},
			browse: func(t *testing.T, e *env, hc *http.Client, authURL string) (int, string) {
				return get(t, hc, e.consent(t, hc, authURL, "allow", nil))
			},
			wantIs:  ErrExchange,
			wantErr: []string{"Schwab rejected the app key/secret: check app_key and app_secret in configs/schwab_app_config.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.env...)
			old := writeOldFile(t, e.tokenFile)
			r := start(t, t.Context(), e.options())
			hc := e.browser(t)
			status, body := tt.browse(t, e, hc, r.ready(t))
			_, err := r.wait(t)
			if err == nil {
				t.Fatal("Run succeeded, want an error")
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q does not match %v", err, tt.wantIs)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if status != http.StatusBadRequest || !strings.Contains(body, "<title>token-refresh-sender - Login failed</title>") ||
				!strings.Contains(body, `id="error"`) {
				t.Errorf("browser got HTTP %d:\n%s", status, body)
			}
			assertUnchanged(t, e.tokenFile, old)
			assertNoSecrets(t, []string{testAppSecret}, map[string]string{"error": err.Error(), "logs": e.logs.String(), "page": body})
		})
	}
}

func TestRun_IgnoresProbes(t *testing.T) {
	e := newEnv(t)
	r := start(t, t.Context(), e.options())
	authURL := r.ready(t)
	hc := e.browser(t)
	for _, p := range []string{"/favicon.ico", "/", "/?session=abc"} {
		if status, _ := get(t, hc, e.app.CallbackURL+p); status != http.StatusNotFound {
			t.Errorf("GET %s: HTTP %d, want 404", p, status)
		}
	}
	if status, body := get(t, hc, e.app.CallbackURL+"/?code=%zz"); status != http.StatusBadRequest || !strings.Contains(body, "malformed") {
		t.Errorf("malformed query: HTTP %d: %s", status, body)
	}
	resp, err := hc.Post(e.app.CallbackURL+"/?code=x", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: HTTP %d, want 405", resp.StatusCode)
	}
	// TLS older than 1.2 is refused.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11, InsecureSkipVerify: true, //nolint:gosec // test
	}}}
	if resp, err := old.Get(e.app.CallbackURL + "/"); err == nil {
		resp.Body.Close()
		t.Error("a TLS 1.1 client was served")
	}
	select {
	case o := <-r.done:
		t.Fatalf("Run ended on a probe: %v", o.err)
	default:
	}
	loc := e.consent(t, hc, authURL, "allow", nil)
	if status, _ := get(t, hc, loc); status != http.StatusOK {
		t.Errorf("callback: HTTP %d", status)
	}
	if _, err := r.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st := e.fake.Stats(); st.Exchanges != 1 || st.TokenRequests != 1 {
		t.Errorf("token requests = %d, exchanges = %d; want 1, 1", st.TokenRequests, st.Exchanges)
	}
}

func TestCallbackHandler_ServeHTTP_afterEnd(t *testing.T) {
	e := newEnv(t)
	cb, _ := e.app.Callback()
	f := &flow{opts: e.options(), log: slog.New(slog.DiscardHandler), now: e.clock.Now, callback: cb, state: "st"}
	h := &callbackHandler{flow: f, ctx: t.Context(), done: make(chan outcome, 1)}
	if !h.claim() {
		t.Fatal("first claim failed")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/?code=C0.abc%40&state=st", nil))
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "This login has already ended") {
		t.Errorf("HTTP %d: %s", w.Code, w.Body)
	}
	if len(h.done) != 0 || e.fake.Stats().TokenRequests != 0 {
		t.Error("a callback after the end was acted on")
	}
	if _, err := os.Stat(e.tokenFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("token file: %v", err)
	}
}

func TestRun_Timeout(t *testing.T) {
	e := newEnv(t)
	old := writeOldFile(t, e.tokenFile)
	opts := e.options()
	opts.Timeout = 20 * time.Millisecond
	_, err := Run(t.Context(), opts)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if !strings.HasPrefix(err.Error(), "no login callback within 20ms") {
		t.Errorf("err = %q", err)
	}
	assertUnchanged(t, e.tokenFile, old)
	// The callback port is released.
	ln, err := net.Listen("tcp", strings.TrimPrefix(e.app.CallbackURL, "https://"))
	if err != nil {
		t.Fatalf("callback port still busy: %v", err)
	}
	ln.Close()
}

func TestRun_Cancelled(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	r := start(t, ctx, e.options())
	r.ready(t)
	cancel()
	_, err := r.wait(t)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "login cancelled") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(e.tokenFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("token file exists after a cancelled login: %v", err)
	}
}

func TestRun_PortInUse(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	e.app.CallbackURL = "https://127.0.0.1:" + port
	_, err = Run(t.Context(), e.options())
	want := "cannot listen on 127.0.0.1:" + port + " for the login callback: port " + port + " is already in use (is another login running?)"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("err does not match EADDRINUSE")
	}
	if e.out.String() != "" {
		t.Errorf("URL printed although the login could not start: %q", e.out.String())
	}
}

func TestRun_BadSetup(t *testing.T) {
	tests := []struct {
		name   string
		modify func(e *env, o *Options)
		want   string
	}{
		{"no callback", func(e *env, o *Options) { e.app.CallbackURL = "" }, "callback_url is missing"},
		{"http callback", func(e *env, o *Options) { e.app.CallbackURL = "http://127.0.0.1:8182" }, "must start with https://"},
		{"remote callback", func(e *env, o *Options) { e.app.CallbackURL = "https://example.com:8182" }, "host must be 127.0.0.1, localhost or [::1]"},
		{"no port", func(e *env, o *Options) { e.app.CallbackURL = "https://127.0.0.1" }, "must include a port"},
		{"missing directory", func(e *env, o *Options) { o.TokenFile += ".d/tokens.json" }, "does not exist; create it or choose another token file"},
		{"token file is a directory", func(e *env, o *Options) { os.Mkdir(o.TokenFile, 0o700) }, "is a directory"},
		{"no client", func(e *env, o *Options) { o.Client = nil }, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			opts := e.options()
			tt.modify(e, &opts)
			_, err := Run(t.Context(), opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if e.out.String() != "" {
				t.Errorf("URL printed although the login could not start")
			}
		})
	}
}

func TestRun_Localhost(t *testing.T) {
	port := strconv.Itoa(freePort(t))
	e := newEnv(t, func(cfg *fakeschwab.Config, app *config.App, _ *schwab.Client) {
		cfg.CallbackURL = "https://localhost:" + port
		app.CallbackURL = cfg.CallbackURL
	})
	r := start(t, t.Context(), e.options())
	hc := e.browser(t)
	loc := e.consent(t, hc, r.ready(t), "allow", nil)
	if !strings.HasPrefix(loc, "https://localhost:"+port+"/?code=") {
		t.Fatalf("Location = %s", loc)
	}
	// Reach the callback on the IPv4 loopback, as a browser may.
	if status, body := get(t, hc, strings.Replace(loc, "localhost", "127.0.0.1", 1)); status != http.StatusOK {
		t.Errorf("callback: HTTP %d: %s", status, body)
	}
	if _, err := r.wait(t); err != nil {
		t.Fatal(err)
	}
}

func TestRun_Manual(t *testing.T) {
	type pasteFunc func(e *env, loc string) []string
	tests := []struct {
		name     string
		decision string
		paste    pasteFunc
		wantIs   error  // nil: success
		wantErr  string // in the error
		wantLogs string
	}{
		{name: "plain", decision: "allow", paste: func(_ *env, loc string) []string { return []string{loc} }},
		{name: "double quotes and spaces", decision: "allow",
			paste: func(_ *env, loc string) []string { return []string{"  \"" + loc + "\"  \t"} }},
		{name: "single quotes", decision: "allow", paste: func(_ *env, loc string) []string { return []string{"'" + loc + "'"} }},
		{name: "no scheme", decision: "allow",
			paste: func(_ *env, loc string) []string { return []string{strings.TrimPrefix(loc, "https://")} }},
		{name: "empty lines then garbage then good", decision: "allow",
			paste:    func(_ *env, loc string) []string { return []string{"", "   ", "garbage", loc} },
			wantLogs: "the pasted text is not a web address"},
		{name: "denied", decision: "deny", paste: func(_ *env, loc string) []string { return []string{loc} },
			wantIs: ErrDenied, wantErr: "login was denied in the browser (access_denied); run login again and click Allow"},
		{name: "other host", decision: "allow",
			paste: func(e *env, loc string) []string {
				return []string{strings.Replace(loc, strings.TrimPrefix(e.app.CallbackURL, "https://"), "127.0.0.1:1", 1)}
			},
			wantIs: errAny, wantErr: "the pasted address is for https://127.0.0.1:1, not the callback URL "},
		{name: "no code", decision: "allow",
			paste:  func(e *env, _ string) []string { return []string{e.app.CallbackURL + "/?session=abc"} },
			wantIs: errAny, wantErr: "the pasted address has no code"},
		{name: "foreign code, then the real one", decision: "allow",
			paste:    func(_ *env, loc string) []string { return []string{withState(loc, ""), loc} },
			wantLogs: "the pasted address has an authorization code but no state, so it is not from this login; paste the address"},
		{name: "error without our state, then the real one", decision: "allow",
			paste: func(e *env, loc string) []string {
				return []string{e.app.CallbackURL + "/?error=access_denied&state=other", loc}
			},
			wantLogs: "the pasted address has an error but a state that does not match this login"},
		{name: "another login's address only", decision: "allow",
			paste:  func(_ *env, loc string) []string { return []string{withState(loc, "other")} },
			wantIs: errAny, wantErr: "(last paste: the pasted address has an authorization code but a state that does not match this login"},
		{name: "nothing", decision: "allow", paste: func(*env, string) []string { return nil },
			wantIs: errAny, wantErr: "the input ended before a redirect address was pasted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			old := writeOldFile(t, e.tokenFile)
			pr, pw := netPipe(t)
			opts := e.options()
			opts.Manual = true
			opts.In = pr
			hc := e.browser(t)
			var code string
			opts.Ready = func(authURL string) {
				// No server listens on the callback port in manual mode.
				ln, err := net.Listen("tcp", strings.TrimPrefix(e.app.CallbackURL, "https://"))
				if err != nil {
					t.Errorf("callback port is busy in manual mode: %v", err)
				} else {
					ln.Close()
				}
				loc := e.consent(t, hc, authURL, tt.decision, nil)
				code = codeOf(t, loc)
				go func() {
					for _, l := range tt.paste(e, loc) {
						pw.Write([]byte(l + "\n"))
					}
					pw.Close()
				}()
			}
			res, err := Run(t.Context(), opts)
			logs := e.logs.String()
			if tt.wantLogs != "" && !strings.Contains(logs, tt.wantLogs) {
				t.Errorf("logs lack %q:\n%s", tt.wantLogs, logs)
			}
			assertNoSecrets(t, []string{code, testAppSecret}, map[string]string{"logs": logs, "out": e.out.String()})
			if tt.wantIs == nil {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				doc, err := tokenfile.Load(e.tokenFile)
				if err != nil {
					t.Fatal(err)
				}
				if !e.fake.ValidAccessToken(doc.Token().AccessToken) || !sameToken(doc.Token(), res.Token) {
					t.Errorf("token file does not hold the new, valid token")
				}
				return
			}
			if err == nil {
				t.Fatal("Run succeeded, want an error")
			}
			if tt.wantIs != errAny && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q does not match %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q lacks %q", err, tt.wantErr)
			}
			assertNoSecrets(t, []string{code}, map[string]string{"error": err.Error()})
			assertUnchanged(t, e.tokenFile, old)
		})
	}
}

func TestRun_ManualTimeout(t *testing.T) {
	e := newEnv(t)
	pr, _ := netPipe(t)
	opts := e.options()
	opts.Manual = true
	opts.In = pr
	opts.Timeout = 20 * time.Millisecond
	_, err := Run(t.Context(), opts)
	if !errors.Is(err, ErrTimeout) || !strings.HasPrefix(err.Error(), "no redirect address pasted within 20ms") {
		t.Fatalf("err = %v", err)
	}
}

func TestRun_OpensBrowser(t *testing.T) {
	display := func(k string) string {
		if k == "DISPLAY" {
			return ":0"
		}
		return ""
	}
	headless := func(string) string { return "" }
	tests := []struct {
		name    string
		mode    BrowserMode
		getenv  func(string) string
		openErr error
		want    bool
	}{
		{"auto with display", BrowserAuto, display, nil, true},
		{"auto headless", BrowserAuto, headless, nil, false},
		{"open headless", BrowserOpen, headless, nil, true},
		{"never with display", BrowserNever, display, nil, false},
		{"opener fails", BrowserOpen, headless, errors.New("xdg-open is not installed"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			opts := e.options()
			opts.Manual = true // ends at once: the input is empty
			opts.Browser = tt.mode
			opts.Getenv = tt.getenv
			var opened []string
			opts.OpenURL = func(u string) error {
				opened = append(opened, u)
				return tt.openErr
			}
			var authURL string
			opts.Ready = func(u string) { authURL = u }
			Run(t.Context(), opts) //nolint:errcheck // only the opening matters here
			if got := len(opened) == 1 && opened[0] == authURL; got != tt.want || len(opened) > 1 {
				t.Errorf("opened %q, want opened=%v (%s)", opened, tt.want, authURL)
			}
			logs := e.logs.String()
			if tt.openErr != nil && !strings.Contains(logs, "Could not open a browser (xdg-open is not installed); open the URL above yourself") {
				t.Errorf("logs lack the open failure:\n%s", logs)
			}
			if !strings.Contains(e.out.String(), authURL+"\n") {
				t.Errorf("URL not printed: %q", e.out.String())
			}
		})
	}
}

func TestHasDisplay(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		goos string
		env  map[string]string
		want bool
	}{
		{"linux", nil, false},
		{"linux", map[string]string{"DISPLAY": ":0"}, true},
		{"linux", map[string]string{"WAYLAND_DISPLAY": "wayland-0"}, true},
		{"freebsd", map[string]string{"DISPLAY": ":1"}, true},
		{"darwin", nil, true},
	}
	for _, tt := range tests {
		if got := hasDisplay(env(tt.env), tt.goos); got != tt.want {
			t.Errorf("hasDisplay(%v, %s) = %v, want %v", tt.env, tt.goos, got, tt.want)
		}
	}
	if browserCommand("darwin") != "open" || browserCommand("linux") != "xdg-open" {
		t.Error("browserCommand")
	}
}

func TestAuthorizeURL(t *testing.T) {
	app := &config.App{
		Path: "app.yaml", AppKey: "key+1", AppSecret: "s", CallbackURL: "https://127.0.0.1:8182",
		AuthorizeURL: "https://api.schwabapi.com/v1/oauth/authorize",
	}
	got, err := AuthorizeURL(app, "st")
	if err != nil {
		t.Fatal(err)
	}
	want := "https://api.schwabapi.com/v1/oauth/authorize?client_id=key%2B1&redirect_uri=https%3A%2F%2F127.0.0.1%3A8182&response_type=code&state=st"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	app.AuthorizeURL = ""
	app.CallbackURL = "https://127.0.0.1:8182/"
	got, err = AuthorizeURL(app, "")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(got)
	if u.Host != "api.schwabapi.com" || u.Query().Get("redirect_uri") != "https://127.0.0.1:8182/" || u.Query().Has("state") {
		t.Errorf("got %s", got)
	}
	if strings.Contains(got, app.AppSecret+"&") || strings.Contains(got, "secret") {
		t.Errorf("URL has the secret: %s", got)
	}
	app.CallbackURL = "http://127.0.0.1:8182"
	if _, err := AuthorizeURL(app, "st"); err == nil {
		t.Error("http callback accepted")
	}
}

func TestResult_Summary(t *testing.T) {
	at := time.Date(2025, 11, 13, 8, 44, 24, 0, time.UTC)
	r := &Result{TokenFile: "configs/schwab_tokens.json", LoggedInAt: at, RefreshTokenExpiresAt: at.Add(36 * time.Hour)}
	r.Token.AccessToken = "I0.abcdefghijklmnopqrstuvwxyz0123456789@"
	r.Token.ExpiresAt = at.Add(30 * time.Minute)
	want := "Logged in: tokens saved to configs/schwab_tokens.json; access token I0.abcde... expires at 2025-11-13 09:14:24; refresh token must be renewed by 2025-11-14 20:44:24 (1 day 12 hours)"
	if got := r.Summary(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for _, s := range []string{r.String(), r.LogValue().String()} {
		if s != want {
			t.Errorf("String/LogValue = %s", s)
		}
	}
}

func TestExchangeError(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&schwab.Error{Op: "exchange", StatusCode: 400, Code: "invalid_request", Description: "Bad authorization code: AuthorizationCode has expired", Kind: schwab.KindRelogin},
			"the authorization code expired before it could be exchanged"},
		{&schwab.Error{Op: "exchange", StatusCode: 400, Code: "invalid_request", Description: "Bad authorization code: AuthorizationCode is invalid or was already used", Kind: schwab.KindRelogin},
			"Schwab did not accept the authorization code (it is single use"},
		{&schwab.Error{Op: "exchange", StatusCode: 400, Code: "invalid_request", Description: "Redirect URI mismatch", Kind: schwab.KindRelogin},
			"Schwab rejected the redirect URI: callback_url in app.yaml must match"},
		{&schwab.Error{Op: "exchange", StatusCode: 401, Code: "invalid_client", Description: "Unauthorized", Kind: schwab.KindRelogin},
			"Schwab rejected the app key/secret: check app_key and app_secret in app.yaml"},
		{&schwab.Error{Op: "exchange", StatusCode: 503, Kind: schwab.KindTransient},
			"could not get tokens from Schwab (the code cannot be retried later"},
		{&schwab.Error{Op: "exchange", StatusCode: 400, Code: "invalid_scope", Kind: schwab.KindRelogin},
			"Schwab refused the authorization code; run login again (Schwab: HTTP 400: invalid_scope)"},
		{errors.New("boom"), "could not exchange the authorization code for tokens: boom"},
	}
	for _, tt := range tests {
		err := exchangeError(tt.err, "app.yaml", "tokens.json")
		if !strings.Contains(err.Error(), tt.want) || !strings.HasSuffix(err.Error(), "; token file tokens.json was not changed") {
			t.Errorf("exchangeError(%v) = %q, want %q", tt.err, err, tt.want)
		}
		if !errors.Is(err, ErrExchange) || !errors.Is(err, tt.err) {
			t.Errorf("exchangeError(%v) does not match ErrExchange and its cause", tt.err)
		}
	}
}

// withState returns the redirect address loc with its state replaced by
// state (removed when state is empty).
func withState(loc, state string) string {
	u, err := url.Parse(loc)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	q.Del("state")
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// loginOnce runs one login through the browser and returns Run's outcome.
func loginOnce(t *testing.T, e *env) (*Result, error) {
	t.Helper()
	r := start(t, t.Context(), e.options())
	hc := e.browser(t)
	get(t, hc, e.consent(t, hc, r.ready(t), "allow", nil))
	return r.wait(t)
}

func TestRun_SaveOverExistingFile(t *testing.T) {
	t.Run("unusable file is replaced", func(t *testing.T) {
		e := newEnv(t)
		if err := os.WriteFile(e.tokenFile, []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := loginOnce(t, e)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		doc, err := tokenfile.Load(e.tokenFile)
		if err != nil || !sameToken(doc.Token(), res.Token) {
			t.Fatalf("token file not replaced: %v", err)
		}
		if !strings.Contains(e.logs.String(), "level=WARN msg=\"The old token file was unusable, so the new tokens replace it: token file "+e.tokenFile+": malformed JSON") {
			t.Errorf("logs lack the warning:\n%s", e.logs)
		}
	})
	t.Run("unreadable file is kept", func(t *testing.T) {
		e := newEnv(t)
		// A socket at the path cannot be opened: the login reports the
		// tokens as not saved rather than guess.
		ln, err := net.Listen("unix", e.tokenFile)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, err = loginOnce(t, e)
		if !errors.Is(err, ErrNotSaved) || !strings.Contains(err.Error(), "cannot read") {
			t.Fatalf("err = %v, want ErrNotSaved for an unreadable file", err)
		}
		if fi, err := os.Lstat(e.tokenFile); err != nil || fi.Mode()&os.ModeSocket == 0 {
			t.Errorf("the socket was replaced: %v", err)
		}
	})
}
