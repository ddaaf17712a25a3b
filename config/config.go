// Package config reads and validates the Schwab app config
// (configs/schwab_app_config.yaml):
//
//	app_name: DataTradingApp
//	app_key: your_app_key
//	app_secret: your_app_secret
//	callback_url: https://127.0.0.1:8182
//	# optional:
//	token_url: https://api.schwabapi.com/v1/oauth/token
//	authorize_url: https://api.schwabapi.com/v1/oauth/authorize
//
// SCHWAB_APP_KEY and SCHWAB_APP_SECRET, when set, override the file. Every
// problem is reported as one line naming the file, the line and key, and the
// fix; neither the app secret nor the full app key ever appears in an error
// or in App.String.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/internal/oserr"
	"github.com/schwabtools/token-refresh-sender/schwab"
)

// Schwab's OAuth endpoints, used when the file does not name others.
const (
	DefaultTokenURL     = schwab.ProductionTokenURL
	DefaultAuthorizeURL = schwab.ProductionAuthorizeURL
)

// Environment variables that override the file's credentials.
const (
	EnvAppKey    = "SCHWAB_APP_KEY"
	EnvAppSecret = "SCHWAB_APP_SECRET"
)

// maxFileSize bounds what Load reads; the real file is a few hundred bytes.
const maxFileSize = 1 << 20

// Keys the file may hold.
const (
	keyAppName      = "app_name"
	keyAppKey       = "app_key"
	keyAppSecret    = "app_secret"
	keyCallbackURL  = "callback_url"
	keyTokenURL     = "token_url"
	keyAuthorizeURL = "authorize_url"
)

var knownKeys = []string{keyAppName, keyAppKey, keyAppSecret, keyCallbackURL, keyTokenURL, keyAuthorizeURL}

// Example values from the seed's sample config: still having them means the
// operator has not filled the file in.
var exampleValues = map[string]string{keyAppKey: "your_app_key", keyAppSecret: "your_app_secret"}

// App is the validated app config. AppKey and AppSecret are never empty;
// TokenURL and AuthorizeURL are https URLs (the defaults when the file has
// none). CallbackURL is checked only by Callback, since only login needs it.
type App struct {
	Path         string // the file it came from, for messages
	AppName      string
	AppKey       string
	AppSecret    string
	CallbackURL  string
	TokenURL     string
	AuthorizeURL string
}

// Load reads the app config at path. getenv (os.Getenv in main; nil means no
// environment) supplies SCHWAB_APP_KEY and SCHWAB_APP_SECRET, which override
// the file's values when non-empty. Warnings are for the caller to log; they
// may come with an error too (an unknown key often explains a missing one).
//
// A missing file gives exactly "App config file not found: <path>", matching
// fs.ErrNotExist.
func Load(path string, getenv func(string) string) (*App, []string, error) {
	data, mode, err := readFile(path)
	if err != nil {
		return nil, nil, err
	}
	app, warnings, fileHasSecret, err := parse(path, data, getenv)
	if fileHasSecret && mode&0o044 != 0 {
		warnings = append(warnings, fmt.Sprintf(
			"app config %s is readable by group or others (mode %04o) and holds app_secret; run: chmod 600 %s",
			path, mode, path))
	}
	return app, warnings, err
}

func readFile(path string) ([]byte, fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, &configError{msg: "App config file not found: " + path, err: err}
		}
		return nil, 0, readError(path, oserr.Reason(err), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, readError(path, oserr.Reason(err), err)
	}
	if fi.IsDir() {
		return nil, 0, readError(path, "is a directory", nil)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, 0, readError(path, oserr.Reason(err), err)
	}
	if len(data) > maxFileSize {
		return nil, 0, &configError{msg: fmt.Sprintf("app config %s: larger than 1 MiB, so not an app config; check the path", path)}
	}
	return data, fi.Mode().Perm(), nil
}

// Parse validates data, the content of the app config at path (used in
// messages), like Load but without reading a file or checking its mode.
func Parse(path string, data []byte, getenv func(string) string) (*App, []string, error) {
	app, warnings, _, err := parse(path, data, getenv)
	return app, warnings, err
}

// yamlErr finds the "yaml: line N: " prefix of a YAML error. It is
// compiled on first use: only a malformed config needs it, and a package
// variable would be compiled at every start of the program (about 6 µs
// of init, GODEBUG=inittrace=1).
var yamlErr = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: (?:line (\d+): )?`) })

func parse(path string, data []byte, getenv func(string) string) (app *App, warnings []string, fileHasSecret bool, err error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	fail := func(line int, format string, args ...any) error {
		where := ""
		if line > 0 {
			where = "line " + strconv.Itoa(line) + ": "
		}
		return &configError{msg: fmt.Sprintf("app config %s: %s%s", path, where, fmt.Sprintf(format, args...))}
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		if line := tabIndented(data); line > 0 {
			return nil, nil, false, &configError{msg: fmt.Sprintf(
				"app config %s: line %d: indented with a tab; YAML allows only spaces there: replace the tab with spaces", path, line), err: err}
		}
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		at := ""
		if m := yamlErr().FindStringSubmatch(msg); m != nil {
			if m[1] != "" {
				at = " at line " + m[1]
			}
			msg = msg[len(m[0]):]
		}
		return nil, nil, false, &configError{msg: fmt.Sprintf("app config %s: malformed YAML%s: %s", path, at, msg), err: err}
	}

	values := map[string]string{}
	lines := map[string]int{}
	var unknown []*yaml.Node // keys not in knownKeys
	if root := deref(&doc); root != nil && root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		top := deref(root.Content[0])
		switch {
		case top == nil || top.Kind == yaml.ScalarNode && top.Tag == "!!null":
			// An empty document: every key is absent.
		case top.Kind != yaml.MappingNode:
			return nil, nil, false, fail(top.Line, "the top level must be key: value lines (such as app_key: ...), got %s", kindName(top))
		default:
			for i := 0; i < len(top.Content); i += 2 { // key, value, key, value ...
				k, v := deref(top.Content[i]), deref(top.Content[i+1])
				if k == nil || k.Kind != yaml.ScalarNode {
					return nil, nil, false, fail(top.Content[i].Line, "keys must be plain names such as app_key, got %s", kindName(k))
				}
				key := k.Value
				if first, dup := lines[key]; dup {
					return nil, nil, false, fail(k.Line, "%s is set twice (first on line %d); keep one", key, first)
				}
				lines[key] = k.Line
				if !isKnown(key) {
					unknown = append(unknown, k)
					continue
				}
				if v == nil || v.Kind != yaml.ScalarNode {
					return nil, nil, false, fail(top.Content[i+1].Line, "%s must be a string, got %s", key, kindName(v))
				}
				if v.Tag != "!!null" {
					values[key] = strings.TrimSpace(v.Value)
				}
			}
		}
	}

	for _, k := range unknown {
		w := fmt.Sprintf("app config %s: line %d: unknown key %q ignored", path, k.Line, k.Value)
		if s := suggest(k.Value); s != "" {
			w += fmt.Sprintf("; did you mean %q?", s)
		}
		warnings = append(warnings, w)
	}
	for _, key := range []string{keyAppKey, keyAppSecret} {
		if v := values[key]; v != "" && v == exampleValues[key] {
			warnings = append(warnings, fmt.Sprintf("app config %s: line %d: %s is still the example value %q; set it to your Schwab %s",
				path, lines[key], key, v, strings.ReplaceAll(key, "_", " ")))
		}
	}
	fileHasSecret = values[keyAppSecret] != ""

	app = &App{
		Path:         path,
		AppName:      values[keyAppName],
		AppKey:       values[keyAppKey],
		AppSecret:    values[keyAppSecret],
		CallbackURL:  values[keyCallbackURL],
		TokenURL:     values[keyTokenURL],
		AuthorizeURL: values[keyAuthorizeURL],
	}
	if v := strings.TrimSpace(getenv(EnvAppKey)); v != "" {
		app.AppKey = v
	}
	if v := strings.TrimSpace(getenv(EnvAppSecret)); v != "" {
		app.AppSecret = v
	}

	missing := func(key, what, env string) error {
		msg := fmt.Sprintf("%s is missing or empty; set it to your Schwab %s (or set %s)", key, what, env)
		for _, k := range unknown {
			if suggest(k.Value) == key {
				msg += fmt.Sprintf("; line %d has %q, is that a typo?", k.Line, k.Value)
				break
			}
		}
		return fail(0, "%s", msg)
	}
	if app.AppKey == "" {
		return nil, warnings, fileHasSecret, missing(keyAppKey, "app key", EnvAppKey)
	}
	if app.AppSecret == "" {
		return nil, warnings, fileHasSecret, missing(keyAppSecret, "app secret", EnvAppSecret)
	}
	for _, u := range []struct {
		key string
		val *string
		def string
	}{
		{keyTokenURL, &app.TokenURL, DefaultTokenURL},
		{keyAuthorizeURL, &app.AuthorizeURL, DefaultAuthorizeURL},
	} {
		if *u.val == "" {
			*u.val = u.def
			continue
		}
		if p, err := url.Parse(*u.val); err != nil || p.Scheme != "https" || p.Host == "" || p.User != nil {
			return nil, warnings, fileHasSecret, fail(lines[u.key], "%s must be an https:// URL, got %q", u.key, clip(*u.val))
		}
	}
	return app, warnings, fileHasSecret, nil
}

// tabIndented is the number of the first line whose indentation (or a
// blank line) holds a tab, or 0. YAML refuses tabs there, and yaml's own
// message names another line or none.
func tabIndented(data []byte) int {
	for i, line := range strings.Split(string(data), "\n") {
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if strings.Contains(indent, "\t") {
			return i + 1
		}
	}
	return 0
}

// deref follows an alias to the node it names. YAML has no alias of an
// alias (an alias cannot carry an anchor), so one step is enough.
func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch {
	case n == nil:
		return "an unresolvable alias"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.DocumentNode:
		return "a document"
	}
	return "a single value"
}

func isKnown(key string) bool {
	for _, k := range knownKeys {
		if k == key {
			return true
		}
	}
	return false
}

// suggest returns the known key an unknown one was probably meant to be: the
// same ignoring case and '-' for '_', or at most two edits away.
func suggest(key string) string {
	norm := strings.ReplaceAll(strings.ToLower(key), "-", "_")
	if len(norm) > 40 {
		return ""
	}
	for _, k := range knownKeys {
		if norm == k || editDistance(norm, k) <= 2 {
			return k
		}
	}
	return ""
}

// editDistance is the Levenshtein distance counting a swap of neighbours as
// one edit (so "app_secert" is one away from "app_secret").
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// clip shortens a value quoted in a message.
func clip(s string) string {
	if r := []rune(s); len(r) > 80 {
		return string(r[:80]) + "..."
	}
	return s
}

const callbackRule = "Schwab sends the login redirect only to the callback URL registered for your app, which must match this one exactly"

// Callback is the validated callback_url for login: https, host 127.0.0.1,
// localhost or [::1] (login serves it on this machine), an explicit port,
// any path.
func (a *App) Callback() (*url.URL, error) {
	fail := func(format string, args ...any) error {
		return &configError{msg: fmt.Sprintf("app config %s: callback_url %s; %s", a.Path, fmt.Sprintf(format, args...), callbackRule)}
	}
	if a.CallbackURL == "" {
		return nil, fail("is missing; set it to the callback URL registered for your app, for example https://127.0.0.1:8182")
	}
	u, err := url.Parse(a.CallbackURL)
	if err != nil {
		var ue *url.Error
		why := err.Error()
		if errors.As(err, &ue) {
			why = ue.Err.Error()
		}
		return nil, fail("is not a valid URL (%s): %q", why, clip(a.CallbackURL))
	}
	if u.Scheme != "https" {
		return nil, fail("must start with https:// (login serves it over HTTPS), got %q", clip(a.CallbackURL))
	}
	if u.User != nil {
		return nil, fail("must not contain a user name or password, got %q", clip(u.Redacted()))
	}
	switch strings.ToLower(u.Hostname()) {
	case "127.0.0.1", "localhost", "::1":
	default:
		return nil, fail("host must be 127.0.0.1, localhost or [::1] (login receives the redirect on this machine), got %q", clip(u.Hostname()))
	}
	port := u.Port()
	if port == "" {
		return nil, fail("must include a port, for example https://127.0.0.1:8182, got %q", clip(a.CallbackURL))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fail("port must be between 1 and 65535, got %q", clip(port))
	}
	if u.Fragment != "" || strings.Contains(a.CallbackURL, "#") {
		return nil, fail("must not contain a #fragment, got %q", clip(a.CallbackURL))
	}
	return u, nil
}

// String is a one-line summary safe for logs: the app key is shortened with
// tokensender.Redact and the secret is never shown.
func (a App) String() string {
	secret := "(redacted)"
	if a.AppSecret == "" {
		secret = "(empty)"
	}
	name := a.AppName
	if name == "" {
		name = "(no app_name)"
	}
	return fmt.Sprintf("app %q from %s: app_key=%s app_secret=%s callback_url=%s token_url=%s authorize_url=%s",
		name, a.Path, tokensender.Redact(a.AppKey), secret, a.CallbackURL, a.TokenURL, a.AuthorizeURL)
}

// GoString keeps %#v from printing the secret.
func (a App) GoString() string { return a.String() }

// LogValue keeps slog from printing the secret.
func (a App) LogValue() slog.Value { return slog.StringValue(a.String()) }

// configError is a one-line message that unwraps to its cause.
type configError struct {
	msg string
	err error
}

func (e *configError) Error() string { return e.msg }
func (e *configError) Unwrap() error { return e.err }

func readError(path, why string, err error) error {
	return &configError{msg: fmt.Sprintf("app config %s: cannot read: %s", path, why), err: err}
}
