package tokenfile

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	tokensender "github.com/schwabtools/token-refresh-sender"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// secretValues appear in test token files; no error may contain them.
var secretValues = []string{"R-old", "A-old", "ID-old", "SECRET-R", "SECRET-A"}

const validDoc = `{
    "creation_timestamp": 1762983055,
    "refresh_token_issued_at": 1762900000,
    "token": {
        "expires_in": 1800,
        "token_type": "Bearer",
        "scope": "api",
        "refresh_token": "R-old",
        "access_token": "A-old",
        "id_token": "ID-old",
        "expires_at": 1762984855
    }
}
`

func mustParse(tb testing.TB, data string) *Document {
	tb.Helper()
	d, err := Parse("tokens.json", []byte(data))
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return d
}

func mustReadFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustWriteFile(tb testing.TB, path, data string, perm os.FileMode) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(data), perm); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // umask-proof
		tb.Fatal(err)
	}
}

func checkGolden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want := mustReadFile(tb, path)
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		tb.Errorf("%s mismatch (-want +got), run go test -update to accept:\n%s", name, diff)
	}
}

func TestParse_Errors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{"empty", "", "token file tokens.json: is empty; fix it or run token-refresh-sender login"},
		{"only whitespace", " \n\t\n", "token file tokens.json: is empty; fix it or run token-refresh-sender login"},
		{"syntax error position", "{\n    \"token\": {\n        \"refresh_token\": \"R-old\",\n    }\n}",
			"token file tokens.json: malformed JSON at line 4, column 5: invalid character '}' looking for beginning of object key string; fix it or run token-refresh-sender login"},
		{"column counts characters", "{\"é\": x}",
			"token file tokens.json: malformed JSON at line 1, column 7: invalid character 'x' looking for beginning of value; fix it or run token-refresh-sender login"},
		{"truncated", "{\n  \"token\": {\"refresh_token\": \"R-old\"",
			"token file tokens.json: malformed JSON at line 2, column 37: unexpected end of JSON input; fix it or run token-refresh-sender login"},
		{"trailing garbage", "{}\nx",
			"token file tokens.json: malformed JSON at line 2, column 1: invalid character 'x' after top-level value; fix it or run token-refresh-sender login"},
		{"top level array", `[1]`, "token file tokens.json: top level must be a JSON object, got array; fix it or run token-refresh-sender login"},
		{"top level string", `"R-old"`, "token file tokens.json: top level must be a JSON object, got string; fix it or run token-refresh-sender login"},
		{"no token", `{"creation_timestamp": 1}`, "token file tokens.json: token object is missing; run token-refresh-sender login"},
		{"token null", `{"token": null}`, "token file tokens.json: token object is missing; run token-refresh-sender login"},
		{"token array", `{"token": ["R-old"]}`, "token file tokens.json: token must be a JSON object, got array; fix it or run token-refresh-sender login"},
		{"no refresh token", `{"token": {"access_token": "A-old"}}`, "token file tokens.json: token.refresh_token is missing or empty; run token-refresh-sender login"},
		{"empty refresh token", `{"token": {"refresh_token": ""}}`, "token file tokens.json: token.refresh_token is missing or empty; run token-refresh-sender login"},
		{"null refresh token", `{"token": {"refresh_token": null}}`, "token file tokens.json: token.refresh_token is missing or empty; run token-refresh-sender login"},
		{"refresh token number", `{"token": {"refresh_token": 5}}`, "token file tokens.json: token.refresh_token must be a string, got number; fix it or run token-refresh-sender login"},
		{"expires_at string", `{"token": {"refresh_token": "R-old", "expires_at": "1762984855"}}`,
			"token file tokens.json: token.expires_at must be a number, got string; fix it or run token-refresh-sender login"},
		{"expires_at negative", `{"token": {"refresh_token": "R-old", "expires_at": -1}}`,
			"token file tokens.json: token.expires_at must be a number of seconds between 0 and 253402300799, got -1; fix it or run token-refresh-sender login"},
		{"expires_at huge float", `{"token": {"refresh_token": "R-old", "expires_at": 1e300}}`,
			"token file tokens.json: token.expires_at must be a number of seconds between 0 and 253402300799, got 1e300; fix it or run token-refresh-sender login"},
		{"expires_in bool", `{"token": {"refresh_token": "R-old", "expires_in": true}}`,
			"token file tokens.json: token.expires_in must be a number, got boolean; fix it or run token-refresh-sender login"},
		{"access token object", `{"token": {"refresh_token": "R-old", "access_token": {"a": "A-old"}}}`,
			"token file tokens.json: token.access_token must be a string, got object; fix it or run token-refresh-sender login"},
		{"creation_timestamp string", `{"creation_timestamp": "now", "token": {"refresh_token": "R-old"}}`,
			"token file tokens.json: creation_timestamp must be a number, got string; fix it or run token-refresh-sender login"},
		{"issued_at array", `{"refresh_token_issued_at": [], "token": {"refresh_token": "R-old"}}`,
			"token file tokens.json: refresh_token_issued_at must be a number, got array; fix it or run token-refresh-sender login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse("tokens.json", []byte(tt.data))
			if err == nil {
				t.Fatalf("Parse succeeded (%v), want error %q", d.Token().ExpiresAt, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error =\n%s\nwant\n%s", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) {
				t.Errorf("errors.Is(ErrInvalid) = %v, errors.Is(ErrNotFound) = %v; want true, false",
					errors.Is(err, ErrInvalid), errors.Is(err, ErrNotFound))
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			for _, s := range secretValues {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error contains token value %q: %s", s, err)
				}
			}
		})
	}
}

func TestLoad_Errors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.json")
	_, err := Load(missing)
	if err == nil || err.Error() != "Token file not found: "+missing {
		t.Errorf("missing: err = %v, want %q", err, "Token file not found: "+missing)
	}
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: errors.Is(ErrNotFound)=%v errors.Is(fs.ErrNotExist)=%v, want both true",
			errors.Is(err, ErrNotFound), errors.Is(err, fs.ErrNotExist))
	}

	_, err = Load(dir)
	if want := "token file " + dir + ": cannot read: is a directory"; err == nil || err.Error() != want {
		t.Errorf("directory: err = %v, want %q", err, want)
	}
	if errors.Is(err, ErrNotFound) {
		t.Errorf("directory: error matches ErrNotFound")
	}

	big := filepath.Join(dir, "big.json")
	mustWriteFile(t, big, strings.Repeat(" ", maxFileSize+1), 0o600)
	if _, err = Load(big); err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Errorf("big file: err = %v, want larger than 1 MiB", err)
	}

	bad := filepath.Join(dir, "bad.json")
	mustWriteFile(t, bad, `{"token": {}}`, 0o600)
	if _, err = Load(bad); err == nil || err.Error() != "token file "+bad+": token.refresh_token is missing or empty; run token-refresh-sender login" {
		t.Errorf("invalid content: err = %v", err)
	}
}

func TestLoad_PermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files regardless of mode")
	}
	path := filepath.Join(t.TempDir(), "tokens.json")
	mustWriteFile(t, path, validDoc, 0o000)
	_, err := Load(path)
	want := "token file " + path + ": cannot read: permission denied"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("errors.Is(err, fs.ErrPermission) = false")
	}
}

func TestDocument_Token(t *testing.T) {
	tests := []struct {
		name        string
		data        string
		want        tokensender.Token
		wantCreated time.Time
		wantIssued  time.Time
		issuedKnown bool
	}{
		{
			name: "full",
			data: validDoc,
			want: tokensender.Token{AccessToken: "A-old", RefreshToken: "R-old", IDToken: "ID-old",
				TokenType: "Bearer", Scope: "api", ExpiresIn: 1800, ExpiresAt: time.Unix(1762984855, 0)},
			wantCreated: time.Unix(1762983055, 0),
			wantIssued:  time.Unix(1762900000, 0),
			issuedKnown: true,
		},
		{
			name:        "float seconds are floored",
			data:        `{"creation_timestamp": 1762983055.9, "token": {"refresh_token": "R-old", "expires_at": 1762984855.999, "expires_in": 1800.0}}`,
			want:        tokensender.Token{RefreshToken: "R-old", ExpiresIn: 1800, ExpiresAt: time.Unix(1762984855, 0)},
			wantCreated: time.Unix(1762983055, 0),
		},
		{
			name: "exponent notation",
			data: `{"token": {"refresh_token": "R-old", "expires_at": 1.762984855e9}}`,
			want: tokensender.Token{RefreshToken: "R-old", ExpiresAt: time.Unix(1762984855, 0)},
		},
		{
			name: "no access token, no expires_at: zero values, age unknown",
			data: `{"token": {"refresh_token": "R-old"}}`,
			want: tokensender.Token{RefreshToken: "R-old"},
		},
		{
			name: "nulls are absent",
			data: `{"creation_timestamp": null, "refresh_token_issued_at": null, "token": {"refresh_token": "R-old", "access_token": null, "id_token": null, "expires_at": null}}`,
			want: tokensender.Token{RefreshToken: "R-old"},
		},
		{
			name: "duplicate key: last value wins",
			data: `{"token": {"refresh_token": "R-first", "refresh_token": "R-old"}}`,
			want: tokensender.Token{RefreshToken: "R-old"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustParse(t, tt.data)
			want := tt.want
			want.RefreshTokenIssuedAt = tt.wantIssued
			if diff := cmp.Diff(want, d.Token()); diff != "" {
				t.Errorf("Token() mismatch (-want +got):\n%s", diff)
			}
			if got := d.CreatedAt(); !got.Equal(tt.wantCreated) {
				t.Errorf("CreatedAt() = %v, want %v", got, tt.wantCreated)
			}
			issued, ok := d.RefreshTokenIssuedAt()
			if ok != tt.issuedKnown || !issued.Equal(tt.wantIssued) {
				t.Errorf("RefreshTokenIssuedAt() = %v, %v; want %v, %v", issued, ok, tt.wantIssued, tt.issuedKnown)
			}
		})
	}
}

func TestDocument_Apply(t *testing.T) {
	now := time.Unix(1762990000, 0)
	issuedBefore := time.Unix(1762900000, 0)
	tests := []struct {
		name       string
		tok        tokensender.Token
		want       tokensender.Token
		wantIssued time.Time
	}{
		{
			name: "same refresh token: issued_at untouched",
			tok:  tokensender.Token{AccessToken: "A-new", RefreshToken: "R-old", ExpiresIn: 1800, ExpiresAt: now.Add(1800 * time.Second)},
			want: tokensender.Token{AccessToken: "A-new", RefreshToken: "R-old", IDToken: "ID-old", TokenType: "Bearer",
				Scope: "api", ExpiresIn: 1800, ExpiresAt: time.Unix(1762991800, 0)},
			wantIssued: issuedBefore,
		},
		{
			name: "no refresh token in response: old kept, issued_at untouched",
			tok:  tokensender.Token{AccessToken: "A-new", ExpiresIn: 1800, ExpiresAt: now.Add(1800 * time.Second)},
			want: tokensender.Token{AccessToken: "A-new", RefreshToken: "R-old", IDToken: "ID-old", TokenType: "Bearer",
				Scope: "api", ExpiresIn: 1800, ExpiresAt: time.Unix(1762991800, 0)},
			wantIssued: issuedBefore,
		},
		{
			name: "new refresh token: issued_at is now, optional fields replaced",
			tok: tokensender.Token{AccessToken: "A-new", RefreshToken: "R-new", IDToken: "ID-new", TokenType: "bearer",
				Scope: "api2", ExpiresIn: 900, ExpiresAt: now.Add(900 * time.Second)},
			want: tokensender.Token{AccessToken: "A-new", RefreshToken: "R-new", IDToken: "ID-new", TokenType: "bearer",
				Scope: "api2", ExpiresIn: 900, ExpiresAt: time.Unix(1762990900, 0)},
			wantIssued: now,
		},
		{
			name: "zero ExpiresAt: now + expires_in",
			tok:  tokensender.Token{AccessToken: "A-new", RefreshToken: "R-old", ExpiresIn: 1800},
			want: tokensender.Token{AccessToken: "A-new", RefreshToken: "R-old", IDToken: "ID-old", TokenType: "Bearer",
				Scope: "api", ExpiresIn: 1800, ExpiresAt: time.Unix(1762991800, 0)},
			wantIssued: issuedBefore,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustParse(t, validDoc)
			tt.tok.RefreshTokenIssuedAt = tt.wantIssued
			d.Apply(tt.tok, now)
			// Check the document itself and what a reader of the file sees.
			want := tt.want
			want.RefreshTokenIssuedAt = tt.wantIssued
			for _, doc := range []*Document{d, mustParse(t, string(d.Marshal()))} {
				if diff := cmp.Diff(want, doc.Token()); diff != "" {
					t.Errorf("Token() mismatch (-want +got):\n%s", diff)
				}
				if got := doc.CreatedAt(); !got.Equal(now) {
					t.Errorf("CreatedAt() = %v, want %v", got, now)
				}
				if got, ok := doc.RefreshTokenIssuedAt(); !ok || !got.Equal(tt.wantIssued) {
					t.Errorf("RefreshTokenIssuedAt() = %v, %v; want %v, true", got, ok, tt.wantIssued)
				}
			}
		})
	}
}

func TestDocument_Apply_IssuedAtAbsent(t *testing.T) {
	// A file rewritten by schwab-py has no refresh_token_issued_at. A refresh
	// whose login time is unknown must leave the age unknown, not invent it.
	now := time.Unix(1762990000, 0)
	d := mustParse(t, `{"creation_timestamp": 1762983055, "token": {"refresh_token": "R-old"}}`)
	d.Apply(tokensender.Token{AccessToken: "A-new", RefreshToken: "R-old", ExpiresIn: 1800}, now)
	if _, ok := d.RefreshTokenIssuedAt(); ok {
		t.Errorf("RefreshTokenIssuedAt known after a refresh that did not know it")
	}
	if bytes.Contains(d.Marshal(), []byte(keyIssued)) {
		t.Errorf("Marshal added %s:\n%s", keyIssued, d.Marshal())
	}
	d.Apply(tokensender.Token{AccessToken: "A-new2", RefreshToken: "R-new", ExpiresIn: 1800, RefreshTokenIssuedAt: now.Add(time.Minute)}, now.Add(time.Minute))
	if got, ok := d.RefreshTokenIssuedAt(); !ok || !got.Equal(now.Add(time.Minute)) {
		t.Errorf("after new refresh token: RefreshTokenIssuedAt() = %v, %v", got, ok)
	}
	// The caller no longer knows it: the key goes, rather than stay wrong.
	d.Apply(tokensender.Token{AccessToken: "A-new3", ExpiresIn: 1800}, now.Add(2*time.Minute))
	if _, ok := d.RefreshTokenIssuedAt(); ok || bytes.Contains(d.Marshal(), []byte(keyIssued)) {
		t.Errorf("unknown login time kept:\n%s", d.Marshal())
	}
}

func TestDocument_Marshal_Golden(t *testing.T) {
	now := time.Unix(1762990000, 0)
	tok := tokensender.Token{AccessToken: "A-new", RefreshToken: "R-new", IDToken: "ID-new", TokenType: "Bearer",
		Scope: "api", ExpiresIn: 1800, ExpiresAt: now.Add(1800 * time.Second), RefreshTokenIssuedAt: now}

	t.Run("new", func(t *testing.T) {
		checkGolden(t, "new.golden.json", New(tok, now).Marshal())
	})
	t.Run("schwab-py file after refresh keeps unknown keys", func(t *testing.T) {
		d, err := Load(filepath.Join("testdata", "schwab_py_tokens.json"))
		if err != nil {
			t.Fatal(err)
		}
		d.Apply(tok, now)
		got := d.Marshal()
		checkGolden(t, "schwab_py_tokens.applied.golden.json", got)
		// Independently of the golden file: the things that matter.
		for _, want := range []string{
			`"creation_timestamp": 1762990000,`,
			`"refresh_token_issued_at": 1762990000`,
			`"expires_at": 1762991800`,
			`"x_vendor": {`,
			`2.50,`, // unknown numbers keep their text
			`1e3,`,
			`"<&>"`,
			`"big": 12345678901234567890`,
			`"empty": {}`,
		} {
			if !bytes.Contains(got, []byte(want)) {
				t.Errorf("Marshal output lacks %s:\n%s", want, got)
			}
		}
		if bytes.Contains(got, []byte("e+09")) {
			t.Errorf("Marshal wrote a timestamp in exponent form:\n%s", got)
		}
	})
	t.Run("unchanged document keeps values", func(t *testing.T) {
		got := mustParse(t, validDoc).Marshal()
		if string(got) != validDoc {
			t.Errorf("Marshal of an unchanged 4-space file changed it:\n%s\nwant\n%s", got, validDoc)
		}
	})
}

func TestNew(t *testing.T) {
	now := time.Unix(1762983055, 0)
	tok := tokensender.Token{AccessToken: "A", RefreshToken: "R", IDToken: "I", TokenType: "Bearer",
		Scope: "api", ExpiresIn: 1800, ExpiresAt: now.Add(1800 * time.Second)}
	d := New(tok, now)
	back := mustParse(t, string(d.Marshal()))
	tok.RefreshTokenIssuedAt = now
	if diff := cmp.Diff(tok, back.Token()); diff != "" {
		t.Errorf("Token() mismatch (-want +got):\n%s", diff)
	}
	if got, ok := back.RefreshTokenIssuedAt(); !ok || !got.Equal(now) {
		t.Errorf("RefreshTokenIssuedAt() = %v, %v; want %v, true", got, ok, now)
	}
	if got := back.CreatedAt(); !got.Equal(now) {
		t.Errorf("CreatedAt() = %v, want %v", got, now)
	}
}
