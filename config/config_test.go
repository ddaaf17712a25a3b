package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/schwabtools/token-refresh-sender/internal/testkit"
)

const (
	testKey    = "K1234567890abcdefghijklmnopqrstu"
	testSecret = "S9876543210zyxwvu"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func mustWriteFile(tb testing.TB, path, data string, perm os.FileMode) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(data), perm); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		tb.Fatal(err)
	}
}

func checkSafe(tb testing.TB, s string) {
	tb.Helper()
	if strings.Contains(s, testSecret) || strings.Contains(s, testKey) || strings.Contains(s, "ENVSECRET") {
		tb.Errorf("secret or full app key in %q", s)
	}
	if strings.Contains(s, "\n") {
		tb.Errorf("message spans lines: %q", s)
	}
}

func TestParse(t *testing.T) {
	valid := "app_name: DataTradingApp\napp_key: " + testKey + "\napp_secret: " + testSecret + "\ncallback_url: https://127.0.0.1:8182\n"
	tests := []struct {
		name    string
		data    string
		getenv  func(string) string
		want    *App
		wantErr string
		wantW   []string
	}{
		{
			name: "valid, defaults for URLs",
			data: valid,
			want: &App{Path: "c.yaml", AppName: "DataTradingApp", AppKey: testKey, AppSecret: testSecret,
				CallbackURL: "https://127.0.0.1:8182", TokenURL: DefaultTokenURL, AuthorizeURL: DefaultAuthorizeURL},
		},
		{
			name: "explicit URLs, quoted values, comments, no callback",
			data: "# mine\napp_key: '" + testKey + "'\napp_secret: \"" + testSecret + "\"  # secret\n" +
				"token_url: https://127.0.0.1:9443/v1/oauth/token\nauthorize_url: https://localhost:9443/v1/oauth/authorize\n",
			want: &App{Path: "c.yaml", AppKey: testKey, AppSecret: testSecret,
				TokenURL: "https://127.0.0.1:9443/v1/oauth/token", AuthorizeURL: "https://localhost:9443/v1/oauth/authorize"},
		},
		{
			name: "numbers and booleans are taken as their text",
			data: "app_key: 012345\napp_secret: yes\napp_name: 1e3\n",
			want: &App{Path: "c.yaml", AppName: "1e3", AppKey: "012345", AppSecret: "yes",
				TokenURL: DefaultTokenURL, AuthorizeURL: DefaultAuthorizeURL},
		},
		{
			name: "tabs after a key or before a comment are fine",
			data: "app_key:\t" + testKey + "\t# key\napp_secret: " + testSecret + "\n",
			want: &App{Path: "c.yaml", AppKey: testKey, AppSecret: testSecret,
				TokenURL: DefaultTokenURL, AuthorizeURL: DefaultAuthorizeURL},
		},
		{
			name: "aliases are followed",
			data: "app_name: &n " + testKey + "\napp_key: *n\napp_secret: " + testSecret + "\n",
			want: &App{Path: "c.yaml", AppName: testKey, AppKey: testKey, AppSecret: testSecret,
				TokenURL: DefaultTokenURL, AuthorizeURL: DefaultAuthorizeURL},
		},
		{
			name:   "environment overrides the file",
			data:   valid,
			getenv: env(EnvAppKey, "ENVKEY", EnvAppSecret, "ENVSECRET"),
			want: &App{Path: "c.yaml", AppName: "DataTradingApp", AppKey: "ENVKEY", AppSecret: "ENVSECRET",
				CallbackURL: "https://127.0.0.1:8182", TokenURL: DefaultTokenURL, AuthorizeURL: DefaultAuthorizeURL},
		},
		{
			name:   "environment supplies what the file omits",
			data:   "callback_url: https://127.0.0.1:8182\n",
			getenv: env(EnvAppKey, "ENVKEY", EnvAppSecret, "ENVSECRET"),
			want: &App{Path: "c.yaml", AppKey: "ENVKEY", AppSecret: "ENVSECRET",
				CallbackURL: "https://127.0.0.1:8182", TokenURL: DefaultTokenURL, AuthorizeURL: DefaultAuthorizeURL},
		},
		{
			name:   "empty environment values do not override",
			data:   valid,
			getenv: env(EnvAppKey, "", EnvAppSecret, "  "),
			want: &App{Path: "c.yaml", AppName: "DataTradingApp", AppKey: testKey, AppSecret: testSecret,
				CallbackURL: "https://127.0.0.1:8182", TokenURL: DefaultTokenURL, AuthorizeURL: DefaultAuthorizeURL},
		},
		{
			name:   "empty file with environment",
			data:   "",
			getenv: env(EnvAppKey, "ENVKEY", EnvAppSecret, "ENVSECRET"),
			want: &App{Path: "c.yaml", AppKey: "ENVKEY", AppSecret: "ENVSECRET",
				TokenURL: DefaultTokenURL, AuthorizeURL: DefaultAuthorizeURL},
		},
		{
			name:    "empty file",
			data:    "",
			wantErr: "app config c.yaml: app_key is missing or empty; set it to your Schwab app key (or set SCHWAB_APP_KEY)",
		},
		{
			name:    "an empty document (---) or a null",
			data:    "---\n~\n",
			wantErr: "app config c.yaml: app_key is missing or empty; set it to your Schwab app key (or set SCHWAB_APP_KEY)",
		},
		{
			name:    "only comments",
			data:    "# nothing\n",
			wantErr: "app config c.yaml: app_key is missing or empty; set it to your Schwab app key (or set SCHWAB_APP_KEY)",
		},
		{
			name:    "app_key empty",
			data:    "app_key:\napp_secret: " + testSecret + "\n",
			wantErr: "app config c.yaml: app_key is missing or empty; set it to your Schwab app key (or set SCHWAB_APP_KEY)",
		},
		{
			name:    "app_key blank string",
			data:    "app_key: '  '\napp_secret: " + testSecret + "\n",
			wantErr: "app config c.yaml: app_key is missing or empty; set it to your Schwab app key (or set SCHWAB_APP_KEY)",
		},
		{
			name:    "app_secret missing",
			data:    "app_key: " + testKey + "\n",
			wantErr: "app config c.yaml: app_secret is missing or empty; set it to your Schwab app secret (or set SCHWAB_APP_SECRET)",
		},
		{
			name: "app_secret misspelt",
			data: "app_key: " + testKey + "\napp_secert: " + testSecret + "\n",
			wantErr: "app config c.yaml: app_secret is missing or empty; set it to your Schwab app secret (or set SCHWAB_APP_SECRET); " +
				`line 2 has "app_secert", is that a typo?`,
			wantW: []string{`app config c.yaml: line 2: unknown key "app_secert" ignored; did you mean "app_secret"?`},
		},
		{
			name:    "malformed YAML",
			data:    "app_key: [unclosed\napp_secret: x\n",
			wantErr: "app config c.yaml: malformed YAML at line 1: did not find expected ',' or ']'",
		},
		{
			name:    "tab indentation",
			data:    "app_key: x\n\tapp_secret: y\n",
			wantErr: "app config c.yaml: line 2: indented with a tab; YAML allows only spaces there: replace the tab with spaces",
		},
		{
			name:    "tab on the first line (yaml names no line)",
			data:    "\tapp_key: x\napp_secret: y\n",
			wantErr: "app config c.yaml: line 1: indented with a tab; YAML allows only spaces there: replace the tab with spaces",
		},
		{
			name:    "tab after spaces in a nested block (yaml names the line before)",
			data:    "app_name: a\napp_key:\n  - b\n  \t- c\napp_secret: y\n",
			wantErr: "app config c.yaml: line 4: indented with a tab; YAML allows only spaces there: replace the tab with spaces",
		},
		{
			name:    "a blank line holding a tab",
			data:    "app_key: x\n \t\napp_secret: [unclosed\n",
			wantErr: "app config c.yaml: line 2: indented with a tab; YAML allows only spaces there: replace the tab with spaces",
		},
		{
			name:    "unterminated quote",
			data:    "app_key: x\napp_secret: \"" + testSecret + "\n",
			wantErr: "app config c.yaml: malformed YAML at line 2: found unexpected end of stream",
		},
		{
			name:    "error without a line",
			data:    "app_key: *nope\n",
			wantErr: "app config c.yaml: malformed YAML: unknown anchor 'nope' referenced",
		},
		{
			name:    "top level list",
			data:    "- app_key: x\n",
			wantErr: "app config c.yaml: line 1: the top level must be key: value lines (such as app_key: ...), got a list",
		},
		{
			name:    "top level scalar",
			data:    "\n\nhello\n",
			wantErr: "app config c.yaml: line 3: the top level must be key: value lines (such as app_key: ...), got a single value",
		},
		{
			name:    "app_key a list",
			data:    "app_name: x\napp_secret: " + testSecret + "\napp_key:\n  - " + testKey + "\n",
			wantErr: "app config c.yaml: line 4: app_key must be a string, got a list",
		},
		{
			name:    "app_key flow list on its line",
			data:    "app_name: x\napp_secret: " + testSecret + "\napp_key: [" + testKey + "]\n",
			wantErr: "app config c.yaml: line 3: app_key must be a string, got a list",
		},
		{
			name:    "app_secret a mapping",
			data:    "app_key: " + testKey + "\napp_secret: {value: " + testSecret + "}\n",
			wantErr: "app config c.yaml: line 2: app_secret must be a string, got a mapping",
		},
		{
			name:    "key not a scalar",
			data:    "? [a, b]\n: c\n",
			wantErr: "app config c.yaml: line 1: keys must be plain names such as app_key, got a list",
		},
		{
			name:    "duplicate key",
			data:    "app_key: " + testKey + "\napp_secret: x\napp_key: other\n",
			wantErr: "app config c.yaml: line 3: app_key is set twice (first on line 1); keep one",
		},
		{
			name:    "token_url http",
			data:    valid + "token_url: http://api.schwabapi.com/v1/oauth/token\n",
			wantErr: `app config c.yaml: line 5: token_url must be an https:// URL, got "http://api.schwabapi.com/v1/oauth/token"`,
		},
		{
			name:    "token_url not a URL",
			data:    valid + "token_url: api.schwabapi.com\n",
			wantErr: `app config c.yaml: line 5: token_url must be an https:// URL, got "api.schwabapi.com"`,
		},
		{
			name:    "authorize_url no host",
			data:    valid + "authorize_url: 'https:///v1/oauth/authorize'\n",
			wantErr: `app config c.yaml: line 5: authorize_url must be an https:// URL, got "https:///v1/oauth/authorize"`,
		},
		{
			name:    "authorize_url bad escape",
			data:    valid + "authorize_url: https://x/%zz\n",
			wantErr: `app config c.yaml: line 5: authorize_url must be an https:// URL, got "https://x/%zz"`,
		},
		{
			name: "unknown keys warn",
			data: valid + "App_Key_Extra: 1\nCallback-URL: x\nlog_level: debug\n",
			want: &App{Path: "c.yaml", AppName: "DataTradingApp", AppKey: testKey, AppSecret: testSecret,
				CallbackURL: "https://127.0.0.1:8182", TokenURL: DefaultTokenURL, AuthorizeURL: DefaultAuthorizeURL},
			wantW: []string{
				`app config c.yaml: line 5: unknown key "App_Key_Extra" ignored`,
				`app config c.yaml: line 6: unknown key "Callback-URL" ignored; did you mean "callback_url"?`,
				`app config c.yaml: line 7: unknown key "log_level" ignored`,
			},
		},
		{
			name: "example values warn",
			data: "app_key: your_app_key\napp_secret: your_app_secret\n",
			want: &App{Path: "c.yaml", AppKey: "your_app_key", AppSecret: "your_app_secret",
				TokenURL: DefaultTokenURL, AuthorizeURL: DefaultAuthorizeURL},
			wantW: []string{
				`app config c.yaml: line 1: app_key is still the example value "your_app_key"; set it to your Schwab app key`,
				`app config c.yaml: line 2: app_secret is still the example value "your_app_secret"; set it to your Schwab app secret`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, warnings, err := Parse("c.yaml", []byte(tt.data), tt.getenv)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err =\n%v\nwant\n%s", err, tt.wantErr)
				}
				if app != nil {
					t.Errorf("app = %v, want nil with an error", app)
				}
				checkSafe(t, err.Error())
			} else {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if diff := cmp.Diff(tt.want, app); diff != "" {
					t.Errorf("App mismatch (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tt.wantW, warnings); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
			for _, w := range warnings {
				checkSafe(t, w)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	valid, err := os.ReadFile(filepath.Join("testdata", "valid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	noSecret := "app_key: " + testKey + "\ncallback_url: https://127.0.0.1:8182\n"
	modeWarning := func(path, mode string) string {
		return "app config " + path + " is readable by group or others (mode " + mode + ") and holds app_secret; run: chmod 600 " + path
	}
	tests := []struct {
		name   string
		data   string
		mode   os.FileMode
		getenv func(string) string
		wantW  func(path string) []string
	}{
		{name: "0600 with secret", data: string(valid), mode: 0o600},
		{name: "0644 with secret warns", data: string(valid), mode: 0o644,
			wantW: func(p string) []string { return []string{modeWarning(p, "0644")} }},
		{name: "0640 with secret warns", data: string(valid), mode: 0o640,
			wantW: func(p string) []string { return []string{modeWarning(p, "0640")} }},
		{name: "0620 (group may write, not read) is quiet", data: string(valid), mode: 0o620},
		{name: "0644 with secret only in environment is quiet", data: noSecret, mode: 0o644,
			getenv: env(EnvAppSecret, "ENVSECRET")},
		{name: "0644 with secret in file overridden by environment still warns", data: string(valid), mode: 0o644,
			getenv: env(EnvAppSecret, "ENVSECRET"),
			wantW:  func(p string) []string { return []string{modeWarning(p, "0644")} }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("app%d.yaml", i))
			mustWriteFile(t, path, tt.data, tt.mode)
			app, warnings, err := Load(path, tt.getenv)
			if err != nil {
				t.Fatal(err)
			}
			if app.Path != path || app.AppKey != testKey {
				t.Errorf("app = %v", app)
			}
			var want []string
			if tt.wantW != nil {
				want = tt.wantW(path)
			}
			if diff := cmp.Diff(want, warnings); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoad_Errors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "schwab_app_config.yaml")
	_, _, err := Load(missing, nil)
	if err == nil || err.Error() != "App config file not found: "+missing {
		t.Errorf("missing: err = %v", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: errors.Is(err, fs.ErrNotExist) = false")
	}

	_, _, err = Load(dir, nil)
	if want := "app config " + dir + ": cannot read: is a directory"; err == nil || err.Error() != want {
		t.Errorf("directory: err = %v, want %q", err, want)
	}

	// Exactly 1 MiB is read; one byte more is not.
	largest := filepath.Join(dir, "largest.yaml")
	body := "app_key: k\napp_secret: s\n#"
	mustWriteFile(t, largest, body+strings.Repeat("x", maxFileSize-len(body)), 0o600)
	if app, _, err := Load(largest, nil); err != nil || app.AppKey != "k" {
		t.Errorf("a 1 MiB file: %v, %v", app, err)
	}

	big := filepath.Join(dir, "big.yaml")
	mustWriteFile(t, big, strings.Repeat("#", maxFileSize+1), 0o600)
	if _, _, err = Load(big, nil); err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Errorf("big: err = %v", err)
	}

	// Warnings come with an error when they explain it.
	typo := filepath.Join("testdata", "typo.yaml")
	_, warnings, err := Load(typo, nil)
	if err == nil || !strings.Contains(err.Error(), `line 3 has "app_secert", is that a typo?`) {
		t.Errorf("typo: err = %v", err)
	}
	if len(warnings) == 0 || !strings.Contains(warnings[0], `unknown key "app_secert" ignored`) {
		t.Errorf("typo: warnings = %q", warnings)
	}
}

func TestLoad_PermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files regardless of mode")
	}
	path := filepath.Join(t.TempDir(), "app.yaml")
	mustWriteFile(t, path, "app_key: x\n", 0o000)
	_, _, err := Load(path, nil)
	if want := "app config " + path + ": cannot read: permission denied"; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("errors.Is(err, fs.ErrPermission) = false")
	}
}

func TestApp_Callback(t *testing.T) {
	const rule = "; Schwab sends the login redirect only to the callback URL registered for your app, which must match this one exactly"
	tests := []struct {
		url     string
		wantErr string // "" = valid
	}{
		{url: "https://127.0.0.1:8182"},
		{url: "https://127.0.0.1:8182/"},
		{url: "https://localhost:8443/callback/schwab"},
		{url: "https://LOCALHOST:8443"},
		{url: "https://[::1]:8182/cb?app=1"},
		{url: "", wantErr: "callback_url is missing; set it to the callback URL registered for your app, for example https://127.0.0.1:8182"},
		{url: "http://127.0.0.1:8182", wantErr: `callback_url must start with https:// (login serves it over HTTPS), got "http://127.0.0.1:8182"`},
		{url: "127.0.0.1:8182", wantErr: `callback_url is not a valid URL (first path segment in URL cannot contain colon): "127.0.0.1:8182"`},
		{url: "https://0.0.0.0:8182", wantErr: `callback_url host must be 127.0.0.1, localhost or [::1] (login receives the redirect on this machine), got "0.0.0.0"`},
		{url: "https://example.com:8182", wantErr: `callback_url host must be 127.0.0.1, localhost or [::1] (login receives the redirect on this machine), got "example.com"`},
		{url: "https://127.0.0.2:8182", wantErr: `callback_url host must be 127.0.0.1, localhost or [::1] (login receives the redirect on this machine), got "127.0.0.2"`},
		{url: "https://127.0.0.1", wantErr: `callback_url must include a port, for example https://127.0.0.1:8182, got "https://127.0.0.1"`},
		{url: "https://127.0.0.1:/cb", wantErr: `callback_url must include a port, for example https://127.0.0.1:8182, got "https://127.0.0.1:/cb"`},
		{url: "https://127.0.0.1:0", wantErr: `callback_url port must be between 1 and 65535, got "0"`},
		{url: "https://127.0.0.1:1"},
		{url: "https://127.0.0.1:65535"},
		{url: "https://127.0.0.1:65536", wantErr: `callback_url port must be between 1 and 65535, got "65536"`},
		{url: "https://127.0.0.1:70000", wantErr: `callback_url port must be between 1 and 65535, got "70000"`},
		{url: "https://127.0.0.1:8182/#x", wantErr: `callback_url must not contain a #fragment, got "https://127.0.0.1:8182/#x"`},
		{url: "https://me:pw@127.0.0.1:8182", wantErr: `callback_url must not contain a user name or password, got "https://me:xxxxx@127.0.0.1:8182"`},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			a := &App{Path: "c.yaml", CallbackURL: tt.url}
			u, err := a.Callback()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Callback: %v", err)
				}
				if u.String() != tt.url {
					t.Errorf("URL = %s, want %s", u, tt.url)
				}
				return
			}
			if want := "app config c.yaml: " + tt.wantErr + rule; err == nil || err.Error() != want {
				t.Errorf("err =\n%v\nwant\n%s", err, want)
			}
		})
	}
}

func TestApp_String(t *testing.T) {
	a := App{Path: "c.yaml", AppName: "DataTradingApp", AppKey: testKey, AppSecret: testSecret,
		CallbackURL: "https://127.0.0.1:8182", TokenURL: DefaultTokenURL, AuthorizeURL: DefaultAuthorizeURL}
	want := `app "DataTradingApp" from c.yaml: app_key=K1234567... app_secret=(redacted) callback_url=https://127.0.0.1:8182 ` +
		`token_url=https://api.schwabapi.com/v1/oauth/token authorize_url=https://api.schwabapi.com/v1/oauth/authorize`
	if got := a.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "app", a, "ptr", &a)
	outputs := []string{
		fmt.Sprint(a), fmt.Sprint(&a), fmt.Sprintf("%+v", a), fmt.Sprintf("%+v", &a),
		fmt.Sprintf("%#v", a), fmt.Sprintf("%#v", &a), fmt.Sprintf("%v", []*App{&a}), logged.String(),
	}
	for i, s := range outputs {
		if strings.Contains(s, testSecret) || strings.Contains(s, testKey) {
			t.Errorf("output %d shows a secret: %s", i, s)
		}
		if !strings.Contains(s, "K1234567...") {
			t.Errorf("output %d is not the summary: %s", i, s)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "abc", 3}, {"abc", "", 3}, {"app_key", "app_key", 0},
		{"app_kee", "app_key", 1}, {"ap_ke", "app_key", 2}, {"app_secert", "app_secret", 1},
		{"xapp_secertx", "app_secret", 3}, {"ab", "ba", 1}, {"abcd", "badc", 2}, {"kitten", "sitting", 3},
		{"é", "e", 1}, {"appkey", "app_key", 1}, {"app", "app_key", 4},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestClip(t *testing.T) {
	s80 := strings.Repeat("é", 80)
	if got := clip(s80); got != s80 {
		t.Errorf("80 characters clipped: %q", got)
	}
	if got := clip(s80 + "x"); got != s80+"..." {
		t.Errorf("81 characters: %q", got)
	}
}

func TestSuggest(t *testing.T) {
	tests := map[string]string{
		"app_secert": "app_secret", "APP_KEY": "app_key", "app-key": "app_key", "appkey": "app_key",
		"callback": "", "token-url": "token_url", "authorise_url": "authorize_url", "log_level": "",
		"": "", strings.Repeat("x", 100): "", "ap_ke": "app_key", "a_ke": "", "xapp_secertx": "",
	}
	for in, want := range tests {
		if got := suggest(in); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParse: the parser never panics; a success has credentials and https
// URLs; messages are single lines that never show a long secret.
func FuzzParse(f *testing.F) {
	testkit.AddSeeds(f, filepath.Join("testdata", "*.yaml"))
	for _, s := range []string{
		"", "{", "- a", "app_key: [x]", "app_key: &a x\napp_secret: *a\n", "? [a]\n: b\n", "app_key: x\napp_key: y\n",
		"a: &a [*a]\n", "app_key: !!binary aGVsbG8=\napp_secret: s\n", "<<: {app_key: x}\n", "\t", "app_key: \"\\u0000\"\n",
		"app_key: x\napp_secret: y\ntoken_url: http://x\n", "app_key: x\napp_secret: y\ncallback_url: https://[::1]:1/\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		app, warnings, err := Parse("f.yaml", data, nil)
		msgs := slices.Clone(warnings)
		if err != nil {
			msgs = append(msgs, err.Error())
		} else {
			if app.AppKey == "" || app.AppSecret == "" {
				t.Fatalf("success without credentials: %v", app)
			}
			if !strings.HasPrefix(app.TokenURL, "https://") || !strings.HasPrefix(app.AuthorizeURL, "https://") {
				t.Fatalf("non-https URL accepted: %v", app)
			}
			_, _ = app.Callback()
			// String must not depend on the secret's value at all.
			other := *app
			other.AppSecret = "a different secret"
			if s := app.String(); s != other.String() {
				t.Fatalf("String() depends on the secret: %s", s)
			}
		}
		for _, m := range msgs {
			if strings.Contains(m, "\n") {
				t.Fatalf("multi-line message: %q", m)
			}
		}
	})
}
