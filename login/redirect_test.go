package login

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

const testCode = "C0.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEf@"

func mustURL(tb testing.TB, s string) *url.URL {
	tb.Helper()
	u, err := url.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func TestParseRedirect(t *testing.T) {
	cb := mustURL(t, "https://127.0.0.1:8182")
	enc := url.QueryEscape(testCode)
	const st = "st4te"
	bare := "https://127.0.0.1:8182/?code=" + enc + "&session=0b6a5d1e-2f7c-4b8e-9a1d-3c5e7f9a1b2c"
	good := bare + "&state=" + st
	tests := []struct {
		name    string
		pasted  string
		wantIs  error  // for errors
		wantErr string // "" means success
	}{
		{name: "plain", pasted: good},
		{name: "state first", pasted: "https://127.0.0.1:8182/?state=" + st + "&code=" + enc},
		{name: "newline and spaces", pasted: "\t " + good + " \r\n"},
		{name: "double quotes", pasted: `"` + good + `"`},
		{name: "single quotes with spaces inside", pasted: `  ' ` + good + ` '  `},
		{name: "no scheme", pasted: strings.TrimPrefix(good, "https://")},
		{name: "upper-case host and scheme", pasted: strings.Replace(good, "https://", "HTTPS://", 1)},
		{name: "literal @", pasted: "https://127.0.0.1:8182/?code=" + testCode + "&state=" + st},
		{name: "other path", pasted: "https://127.0.0.1:8182/callback?code=" + enc + "&state=" + st},
		{name: "empty", pasted: "  \n", wantErr: "nothing was pasted"},
		{name: "quotes only", pasted: `""`, wantErr: "nothing was pasted"},
		{name: "garbage", pasted: "garbage", wantErr: "the pasted text is not a web address"},
		{name: "two words", pasted: good + " " + good, wantErr: "the pasted text is not a web address"},
		{name: "no code", pasted: "https://127.0.0.1:8182/?session=x&state=" + st, wantErr: "the pasted address has no code"},
		{name: "empty code", pasted: "https://127.0.0.1:8182/?code=&state=" + st, wantErr: "the pasted address has no code"},
		{name: "bare callback", pasted: "https://127.0.0.1:8182", wantErr: "the pasted address has no code"},
		{name: "other port", pasted: strings.Replace(good, "8182", "8183", 1), wantErr: "the pasted address is for https://127.0.0.1:8183, not the callback URL https://127.0.0.1:8182"},
		{name: "other host", pasted: strings.Replace(good, "127.0.0.1", "localhost", 1), wantErr: "is for https://localhost:8182"},
		{name: "http", pasted: strings.Replace(good, "https", "http", 1), wantErr: "is for http://127.0.0.1:8182"},
		{name: "schwab's page", pasted: "https://api.schwabapi.com/v1/oauth/authorize?client_id=x", wantErr: "is for https://api.schwabapi.com"},
		{name: "denied", pasted: "https://127.0.0.1:8182/?error=access_denied&state=" + st, wantIs: ErrDenied,
			wantErr: "login was denied in the browser (access_denied); run login again and click Allow"},
		{name: "empty error", pasted: "https://127.0.0.1:8182/?error=&state=" + st, wantIs: ErrDenied,
			wantErr: "login was denied in the browser (no reason given)"},
		{name: "error with description", pasted: "https://127.0.0.1:8182/?error=server_error&error_description=try%0Alater&state=" + st, wantIs: ErrDenied,
			wantErr: "(server_error: try later)"},
		{name: "error with the same description", pasted: "https://127.0.0.1:8182/?error=server_error&error_description=server_error&state=" + st, wantIs: ErrDenied,
			wantErr: "(server_error);"},
		{name: "code without state", pasted: bare, wantIs: ErrStateMismatch,
			wantErr: "the pasted address has an authorization code but no state, so it is not from this login; paste the address the browser shows after you click Allow on the login page printed above"},
		{name: "code with empty state", pasted: bare + "&state=", wantIs: ErrStateMismatch, wantErr: "has an authorization code but no state"},
		{name: "code with another state", pasted: bare + "&state=old", wantIs: ErrStateMismatch,
			wantErr: "has an authorization code but a state that does not match this login"},
		{name: "code with a longer state", pasted: good + "x", wantIs: ErrStateMismatch, wantErr: "a state that does not match this login"},
		{name: "code with two states", pasted: good + "&state=" + st, wantIs: ErrStateMismatch, wantErr: "more than one state"},
		{name: "error without state", pasted: "https://127.0.0.1:8182/?error=access_denied", wantIs: ErrStateMismatch,
			wantErr: "has an error but no state"},
		{name: "error with another state", pasted: "https://127.0.0.1:8182/?error=access_denied&state=old", wantIs: ErrStateMismatch,
			wantErr: "has an error but a state that does not match this login"},
		{name: "bad escape", pasted: "https://127.0.0.1:8182/?code=abc%4&x=1", wantErr: "the pasted address is damaged (its query is malformed: bad % escape)"},
		{name: "bad character", pasted: "https://127.0.0.1:8182/?code=abc;x=1", wantErr: "(its query is malformed: invalid characters)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := ParseRedirect(cb, tt.pasted, st)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if code != testCode {
					t.Errorf("code = %q, want %q", code, testCode)
				}
				return
			}
			if err == nil {
				t.Fatalf("code %q, want error %q", code, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %q, want %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err does not match %v", tt.wantIs)
			}
			if code != "" || strings.Contains(err.Error(), testCode[:12]) || strings.Contains(err.Error(), enc[:12]) || strings.Contains(err.Error(), st) {
				t.Errorf("the code leaks: code %q, err %q", code, err)
			}
		})
	}
	if _, err := ParseRedirect(nil, good, st); err == nil {
		t.Error("nil callback accepted")
	}
	if _, err := ParseRedirect(cb, bare+"&state=", ""); !errors.Is(err, ErrStateMismatch) ||
		!strings.Contains(err.Error(), "this login has no state to compare it with") {
		t.Errorf("empty wantState: err = %v, want a refusal", err)
	}
}

func FuzzParseRedirect(f *testing.F) {
	enc := url.QueryEscape(testCode)
	for _, s := range []string{
		"https://127.0.0.1:8182/?code=" + enc + "&session=abc&state=st",
		`"https://127.0.0.1:8182/?code=` + enc + `&state=st"`,
		"'127.0.0.1:8182/?code=" + enc + "&state=st'",
		"https://127.0.0.1:8182/?code=" + enc + "&state=other",
		"https://127.0.0.1:8182/?error=access_denied&state=st",
		"https://127.0.0.1:8182/?error=access_denied&error_description=%00%0a",
		"https://127.0.0.1:8182/?code=%zz",
		"https://[::1]:8182/?code=a",
		"https://127.0.0.1:8182/?code=a;b",
		"  \t",
		"\"",
		"://",
		"https://user:pw@127.0.0.1:8182/?code=x#frag",
	} {
		f.Add(s, "st")
	}
	cb := mustURL(f, "https://127.0.0.1:8182")
	f.Fuzz(func(t *testing.T, pasted, state string) {
		code, err := ParseRedirect(cb, pasted, state)
		if err != nil {
			if code != "" {
				t.Errorf("code %q returned with error %v", code, err)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") || !utf8.ValidString(msg) {
				t.Errorf("error is not one clean line: %q", msg)
			}
			return
		}
		if code == "" {
			t.Error("no error and no code")
		}
		// The paste is on the callback's origin and carries this code.
		s := strings.Trim(strings.TrimSpace(pasted), `"'`)
		if !strings.Contains(s, "://") {
			s = "https://" + strings.TrimSpace(s)
		}
		u, perr := url.Parse(strings.TrimSpace(s))
		if perr != nil || !sameOrigin(u, cb) {
			t.Errorf("accepted a paste that is not for %s: %q", cb, pasted)
		}
		// ... and carries exactly this login's state.
		if q, _ := url.ParseQuery(u.RawQuery); state == "" || len(q["state"]) != 1 || q.Get("state") != state {
			t.Errorf("accepted a paste without the state %q: %q", state, pasted)
		}
	})
}
