package login

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// stateOf returns the state in an authorize URL or a redirect address.
func stateOf(tb testing.TB, u string) string {
	tb.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		tb.Fatal(err)
	}
	st := pu.Query().Get("state")
	if st == "" {
		tb.Fatalf("no state in %s", u)
	}
	return st
}

// foreignRedirects are callback queries that must not count: each carries
// a code or an error but not exactly this login's state. code is a real,
// unused authorization code of another login; state is this login's.
func foreignRedirects(code, state string) []struct{ name, query, why string } {
	c := "code=" + url.QueryEscape(code)
	return []struct{ name, query, why string }{
		{"code without state", c, "has an authorization code but no state"},
		{"code with empty state", c + "&state=", "has an authorization code but no state"},
		{"code with another state", c + "&state=another-login", "has an authorization code but a state that does not match this login"},
		{"code with our state twice", c + "&state=" + state + "&state=" + state, "has an authorization code but more than one state"},
		{"code with our state and a prefix", c + "&state=x" + state, "has an authorization code but a state that does not match this login"},
		{"error without state", "error=access_denied", "has an error but no state"},
		{"error with another state", "error=access_denied&state=another-login", "has an error but a state that does not match this login"},
	}
}

// A redirect counts only with this login's state: a stale tab's or another
// user's code (login CSRF) is answered 400, logged as a WARNING without the
// code or the state, never exchanged, and the login goes on to succeed with
// the real redirect.
func TestRun_RefusesForeignRedirects(t *testing.T) {
	e := newEnv(t)
	old := writeOldFile(t, e.tokenFile)
	r := start(t, t.Context(), e.options())
	authURL := r.ready(t)
	state := stateOf(t, authURL)
	hc := e.browser(t)
	// Another login's code, valid and unused (the attacker's own).
	foreign := codeOf(t, e.consent(t, hc, authURL, "allow", map[string]string{"state": "another-login"}))

	cases := foreignRedirects(foreign, state)
	for _, tt := range cases {
		status, body := get(t, hc, e.app.CallbackURL+"/?"+tt.query)
		if status != http.StatusBadRequest || !strings.Contains(body, "<title>token-refresh-sender - Not this login</title>") ||
			!strings.Contains(body, `<p id="error">This address `+tt.why) {
			t.Errorf("%s: HTTP %d:\n%s", tt.name, status, body)
		}
	}
	select {
	case o := <-r.done:
		t.Fatalf("Run ended on a foreign redirect: %v", o.err)
	default:
	}
	if st := e.fake.Stats(); st.TokenRequests != 0 {
		t.Fatalf("a foreign redirect was exchanged: %d token requests", st.TokenRequests)
	}
	assertUnchanged(t, e.tokenFile, old)
	logs := e.logs.String()
	var warnings []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "level=WARN") {
			warnings = append(warnings, l)
		}
	}
	if len(warnings) != len(cases) {
		t.Errorf("%d WARNING lines, want %d:\n%s", len(warnings), len(cases), logs)
	}
	for i, tt := range cases {
		if i < len(warnings) && (!strings.Contains(warnings[i], "Refused a request to the login callback from 127.0.0.1:") ||
			!strings.Contains(warnings[i], ": it "+tt.why) ||
			!strings.Contains(warnings[i], "still waiting for the redirect from this login")) {
			t.Errorf("%s: warning %s", tt.name, warnings[i])
		}
	}

	loc := e.consent(t, hc, authURL, "allow", nil)
	if status, body := get(t, hc, loc); status != http.StatusOK {
		t.Errorf("real redirect: HTTP %d:\n%s", status, body)
	}
	res, err := r.wait(t)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	doc, err := tokenfile.Load(e.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if !sameToken(doc.Token(), res.Token) || !e.fake.ValidAccessToken(doc.Token().AccessToken) {
		t.Error("token file does not hold the real login's token")
	}
	assertNoSecrets(t, []string{foreign, url.QueryEscape(foreign), state, codeOf(t, loc), testAppSecret},
		map[string]string{"logs": e.logs.String(), "out": strings.ReplaceAll(e.out.String(), authURL, "")})
	// The foreign code was never used: it still trades for tokens.
	if _, err := e.client.Exchange(t.Context(), foreign, e.app.CallbackURL); err != nil {
		t.Errorf("the foreign code was used up: %v", err)
	}
}

// The handler alone: a foreign redirect leaves the outcome undecided, so a
// later real redirect can still claim it.
func TestCallbackHandler_ServeHTTP_foreign(t *testing.T) {
	e := newEnv(t)
	cb, _ := e.app.Callback()
	f := &flow{opts: e.options(), log: e.options().Logger, now: e.clock.Now, callback: cb, state: "our-state"}
	h := &callbackHandler{flow: f, ctx: t.Context(), done: make(chan outcome, 1)}
	for _, tt := range foreignRedirects("C0.foreign@", f.state) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/?"+tt.query, nil))
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), tt.why) {
			t.Errorf("%s: HTTP %d: %s", tt.name, w.Code, w.Body)
		}
	}
	if len(h.done) != 0 || !h.claim() {
		t.Error("a foreign redirect decided the login's outcome")
	}
	if e.fake.Stats().TokenRequests != 0 {
		t.Error("a foreign redirect was exchanged")
	}
	if _, err := os.Stat(e.tokenFile); !os.IsNotExist(err) {
		t.Errorf("token file: %v", err)
	}
}

// The attack acted out: another local user (uid 65534) sends their own
// authorization code to our callback, with no state and with a guessed
// one. Nothing of theirs is exchanged or written; the login waits and
// succeeds with the real redirect.
func TestRun_ForgedCallbackFromAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("acts the attacker as uid 65534 with setpriv: needs root")
	}
	for _, tool := range []string{"setpriv", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found", tool)
		}
	}
	e := newEnv(t)
	old := writeOldFile(t, e.tokenFile)
	r := start(t, t.Context(), e.options())
	authURL := r.ready(t)
	hc := e.browser(t)
	// The attacker's own login gives them a valid code.
	attackerCode := codeOf(t, e.consent(t, hc, authURL, "allow", map[string]string{"state": "attacker"}))
	for _, query := range []string{
		"code=" + url.QueryEscape(attackerCode) + "&session=0b6a5d1e-2f7c-4b8e-9a1d-3c5e7f9a1b2c",
		"code=" + url.QueryEscape(attackerCode) + "&state=guessed",
		"error=access_denied",
	} {
		cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			"curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", e.app.CallbackURL+"/?"+query)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("attacker's curl: %v", err)
		}
		if string(out) != "400" {
			t.Errorf("attacker got HTTP %s, want 400", out)
		}
	}
	select {
	case o := <-r.done:
		t.Fatalf("Run ended on the attacker's request: %v", o.err)
	default:
	}
	if st := e.fake.Stats(); st.TokenRequests != 0 {
		t.Fatalf("the attacker's code was exchanged")
	}
	assertUnchanged(t, e.tokenFile, old)

	if status, _ := get(t, hc, e.consent(t, hc, authURL, "allow", nil)); status != http.StatusOK {
		t.Errorf("real redirect: HTTP %d", status)
	}
	if _, err := r.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st := e.fake.Stats(); st.Exchanges != 1 {
		t.Errorf("exchanges = %d, want 1 (ours)", st.Exchanges)
	}
	// The attacker's code is still unused: it was never traded for the
	// tokens now in the file.
	if _, err := e.client.Exchange(t.Context(), attackerCode, e.app.CallbackURL); err != nil {
		t.Errorf("the attacker's code was used: %v", err)
	}
	if n := strings.Count(e.logs.String(), "Refused a request to the login callback"); n != 3 {
		t.Errorf("%d refusals logged, want 3:\n%s", n, e.logs)
	}
}
