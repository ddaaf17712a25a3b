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
	good := "https://127.0.0.1:8182/?code=" + enc + "&session=0b6a5d1e-2f7c-4b8e-9a1d-3c5e7f9a1b2c"
	tests := []struct {
		name    string
		pasted  string
		state   string
		wantIs  error  // for errors
		wantErr string // "" means success
	}{
		{name: "plain", pasted: good},
		{name: "with state", pasted: good + "&state=abc", state: "abc"},
		{name: "no state echoed", pasted: good, state: "abc"},
		{name: "newline and spaces", pasted: "\t " + good + " \r\n"},
		{name: "double quotes", pasted: `"` + good + `"`},
		{name: "single quotes with spaces inside", pasted: `  ' ` + good + ` '  `},
		{name: "no scheme", pasted: strings.TrimPrefix(good, "https://")},
		{name: "upper-case host and scheme", pasted: strings.Replace(good, "https://", "HTTPS://", 1)},
		{name: "literal @", pasted: "https://127.0.0.1:8182/?code=" + testCode},
		{name: "other path", pasted: "https://127.0.0.1:8182/callback?code=" + enc},
		{name: "empty", pasted: "  \n", wantErr: "nothing was pasted"},
		{name: "quotes only", pasted: `""`, wantErr: "nothing was pasted"},
		{name: "garbage", pasted: "garbage", wantErr: "the pasted text is not a web address"},
		{name: "two words", pasted: good + " " + good, wantErr: "the pasted text is not a web address"},
		{name: "no code", pasted: "https://127.0.0.1:8182/?session=x", wantErr: "the pasted address has no code"},
		{name: "empty code", pasted: "https://127.0.0.1:8182/?code=", wantErr: "the pasted address has no code"},
		{name: "bare callback", pasted: "https://127.0.0.1:8182", wantErr: "the pasted address has no code"},
		{name: "other port", pasted: strings.Replace(good, "8182", "8183", 1), wantErr: "the pasted address is for https://127.0.0.1:8183, not the callback URL https://127.0.0.1:8182"},
		{name: "other host", pasted: strings.Replace(good, "127.0.0.1", "localhost", 1), wantErr: "is for https://localhost:8182"},
		{name: "http", pasted: strings.Replace(good, "https", "http", 1), wantErr: "is for http://127.0.0.1:8182"},
		{name: "schwab's page", pasted: "https://api.schwabapi.com/v1/oauth/authorize?client_id=x", wantErr: "is for https://api.schwabapi.com"},
		{name: "denied", pasted: "https://127.0.0.1:8182/?error=access_denied&state=abc", state: "abc", wantIs: ErrDenied,
			wantErr: "login was denied in the browser (access_denied); run login again and click Allow"},
		{name: "error with description", pasted: "https://127.0.0.1:8182/?error=server_error&error_description=try%0Alater", wantIs: ErrDenied,
			wantErr: "(server_error: try later)"},
		{name: "state mismatch", pasted: good + "&state=old", state: "new", wantIs: ErrStateMismatch, wantErr: "different login attempt"},
		{name: "bad escape", pasted: "https://127.0.0.1:8182/?code=abc%4&x=1", wantErr: "the pasted address is damaged (its query is malformed: bad % escape)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := ParseRedirect(cb, tt.pasted, tt.state)
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
			if code != "" || strings.Contains(err.Error(), testCode[:12]) || strings.Contains(err.Error(), enc[:12]) {
				t.Errorf("the code leaks: code %q, err %q", code, err)
			}
		})
	}
	if _, err := ParseRedirect(nil, good, ""); err == nil {
		t.Error("nil callback accepted")
	}
}

func FuzzParseRedirect(f *testing.F) {
	enc := url.QueryEscape(testCode)
	for _, s := range []string{
		"https://127.0.0.1:8182/?code=" + enc + "&session=abc",
		`"https://127.0.0.1:8182/?code=` + enc + `&state=st"`,
		"'127.0.0.1:8182/?code=" + enc + "'",
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
	})
}
