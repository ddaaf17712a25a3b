package schwab

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// Operation names used in Error.Op.
const (
	OpRefresh  = "refresh"
	OpExchange = "exchange"
)

// Kind says what the caller should do about an Error.
type Kind int

// The kinds of failure.
const (
	// KindTransient: try again later (network trouble, 5xx, 429, CDN pages,
	// unusable answers, anything not known to be permanent).
	KindTransient Kind = iota + 1
	// KindRelogin: Schwab no longer accepts the refresh token, the code or the
	// app credentials; retrying cannot help, a human must log in again.
	KindRelogin
)

func (k Kind) String() string {
	switch k {
	case KindTransient:
		return "transient"
	case KindRelogin:
		return "relogin"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is a failed token request.
type Error struct {
	Op         string // OpRefresh or OpExchange
	StatusCode int    // 0 when no complete HTTP response arrived (network error)
	// Code is Schwab's "error" field; when Schwab wraps one error in
	// another's description, the innermost code.
	Code string
	// Description is Schwab's error_description (innermost when wrapped),
	// or what was wrong with the answer; printable, at most 200 characters,
	// secrets replaced by tokensender.Redact.
	Description string
	Kind        Kind
	RetryAfter  time.Duration // from Retry-After, when present
	// Err is the underlying error for network failures and unusable 2xx
	// answers; nil for HTTP error answers, whose raw body it would carry.
	Err error
}

// Error returns one line such as "HTTP 401: invalid_client: Unauthorized",
// "HTTP 503", "network error: dial tcp ...: connection refused" or
// "invalid token response: body is not valid JSON (23 bytes)".
func (e *Error) Error() string {
	switch {
	case e.StatusCode == 0 && e.Err != nil:
		d := e.Description
		if d == "" {
			d = sanitize(causeText(e.Err), nil)
		}
		return "network error: " + d
	case e.StatusCode == 0:
		if e.Description == "" {
			return e.Op + " failed"
		}
		return e.Description
	case e.StatusCode/100 == 2 && e.Code == "":
		return "invalid token response: " + e.Description
	}
	s := "HTTP " + strconv.Itoa(e.StatusCode)
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.RetryAfter > 0 {
		s += " (retry after " + e.RetryAfter.String() + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// IsRelogin reports whether err is an *Error of KindRelogin.
func IsRelogin(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == KindRelogin
}

// RetryAdvice is what the refresh loop needs to know about a failed
// refresh: relogin is true when err is (or wraps) an *Error of KindRelogin,
// and retryAfter is that *Error's RetryAfter (Schwab's Retry-After, at most
// 24h; the caller applies its own cap). Any other error is transient with
// no advice: (false, 0).
func RetryAdvice(err error) (relogin bool, retryAfter time.Duration) {
	var e *Error
	if !errors.As(err, &e) {
		return false, 0
	}
	return e.Kind == KindRelogin, e.RetryAfter
}

// Classify decides the Kind of a failed token request from the HTTP status
// (0: no response), Schwab's innermost error code and its description. It
// is the only place that makes this decision.
func Classify(op string, statusCode int, code, description string) Kind {
	switch {
	case statusCode == 0,
		statusCode == http.StatusRequestTimeout,
		statusCode == http.StatusTooManyRequests,
		statusCode >= 500:
		return KindTransient
	case statusCode == http.StatusUnauthorized:
		return KindRelogin
	}
	switch code {
	case "invalid_client", "invalid_grant", "refresh_token_authentication_error", "refresh_token_invalid":
		return KindRelogin
	}
	d := strings.ToLower(description)
	for _, phrase := range []string{"refresh token invalid", "failed refresh token authentication", "refresh_token_authentication_error"} {
		if strings.Contains(d, phrase) {
			return KindRelogin
		}
	}
	// A code cannot be retried: whatever 4xx Schwab gives (5xx returned
	// above), the user must log in again. A code-less 403 is the CDN, which
	// passes on its own.
	if op == OpExchange && statusCode >= 400 &&
		(statusCode != http.StatusForbidden || code != "") {
		return KindRelogin
	}
	return KindTransient
}

// newError turns a failed x/oauth2 call into an *Error. res is the response
// as recorded on the wire; secrets are scrubbed from every text.
func newError(op string, err error, res response, now time.Time, secrets []string) *Error {
	e := &Error{Op: op}
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re) && re.Response != nil:
		e.StatusCode = re.Response.StatusCode
		code, desc := re.ErrorCode, re.ErrorDescription
		if code != "" {
			code, desc = unwrapNested(code, desc)
		} else {
			desc = describeBody(e.StatusCode, re.Response.Header.Get("Content-Type"), re.Body)
		}
		e.Code, e.Description = sanitize(code, secrets), sanitize(desc, secrets)
		e.RetryAfter = parseRetryAfter(re.Response.Header.Get("Retry-After"), now)
	case res.readErr != nil:
		e.Err = res.readErr
		e.Description = sanitize("reading response: "+causeText(res.readErr), secrets)
	case !res.got:
		e.Err = err
		e.Description = sanitize(causeText(err), secrets)
	default:
		// A 2xx answer x/oauth2 could not use.
		e.StatusCode, e.Err = res.status, err
		e.Description = sanitize(describeInvalid(res.header.Get("Content-Type"), res.body), secrets)
	}
	e.Kind = Classify(op, e.StatusCode, e.Code, e.Description)
	return e
}

// causeText is err's text without the "Post \"url\": " prefix of *url.Error.
func causeText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err.Error()
	}
	return err.Error()
}

// unwrapNested digs the innermost error out of descriptions like
// `400 Bad Request: "{\"error_description\":\"...\",\"error\":\"...\"}"`.
func unwrapNested(code, desc string) (string, string) {
	for range 4 {
		c, d, ok := nestedError(desc)
		if !ok {
			break
		}
		if c != "" {
			code = c
		}
		desc = d
	}
	return code, desc
}

// nestedError decodes a JSON error object, possibly inside a JSON string,
// that starts at the first quote or brace of desc.
func nestedError(desc string) (code, description string, ok bool) {
	i := strings.IndexAny(desc, `"{`)
	if i < 0 {
		return "", "", false
	}
	s := desc[i:]
	if s[0] == '"' {
		var inner string
		if json.NewDecoder(strings.NewReader(s)).Decode(&inner) != nil {
			return "", "", false
		}
		s = strings.TrimSpace(inner)
	}
	if !strings.HasPrefix(s, "{") {
		return "", "", false
	}
	var obj struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.NewDecoder(strings.NewReader(s)).Decode(&obj) != nil {
		return "", "", false
	}
	return obj.Error, obj.ErrorDescription, obj.Error != "" || obj.ErrorDescription != ""
}

// describeBody summarises an error body that has no OAuth error code.
func describeBody(status int, contentType string, body []byte) string {
	if isHTML(contentType, body) {
		where := "HTML page"
		if status == http.StatusForbidden {
			where = "HTML page from Schwab's CDN"
		}
		if t := htmlTitle(body); t != "" {
			return t + " (" + where + ")"
		}
		return where
	}
	var js struct {
		Errors []struct {
			Title  string `json:"title"`
			Detail string `json:"detail"`
		} `json:"errors"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &js) == nil {
		if len(js.Errors) > 0 {
			d := js.Errors[0].Title
			if det := js.Errors[0].Detail; det != "" && det != d {
				d = strings.TrimPrefix(d+": "+det, ": ")
			}
			return d
		}
		return js.Message
	}
	if !utf8.Valid(body) {
		return fmt.Sprintf("%d bytes of binary body", len(body))
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	return line
}

// describeInvalid says what is wrong with a 2xx answer that is not a token.
func describeInvalid(contentType string, body []byte) string {
	var obj map[string]json.RawMessage
	switch {
	case len(strings.TrimSpace(string(body))) == 0:
		return "empty body"
	case isHTML(contentType, body):
		if t := htmlTitle(body); t != "" {
			return "HTML page instead of JSON: " + t
		}
		return "HTML page instead of JSON"
	case !json.Valid(body):
		return fmt.Sprintf("body is not valid JSON (%d bytes)", len(body))
	case json.Unmarshal(body, &obj) != nil:
		return "body is not a JSON object"
	}
	var at string
	if json.Unmarshal(obj["access_token"], &at) != nil || at == "" {
		return "no access_token in the body"
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "text/plain" || mt == "application/x-www-form-urlencoded" {
		return fmt.Sprintf("JSON body sent as %s", mt)
	}
	var probe struct {
		ExpiresIn    int64  `json:"expires_in"`
		TokenType    string `json:"token_type"`
		Scope        string `json:"scope"`
		RefreshToken string `json:"refresh_token"`
		AccessToken  string `json:"access_token"`
		IDToken      string `json:"id_token"`
	}
	var te *json.UnmarshalTypeError
	if errors.As(json.Unmarshal(body, &probe), &te) && te.Field != "" {
		// The field's name and the type it needs, never its value.
		if te.Field == "expires_in" {
			return "expires_in is not a whole number of seconds"
		}
		return te.Field + " is not a string"
	}
	return "token fields have unexpected types"
}

func isHTML(contentType string, body []byte) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "text/html" || mt == "application/xhtml+xml" {
		return true
	}
	s := strings.ToLower(strings.TrimSpace(string(body[:min(len(body), 64)])))
	return strings.HasPrefix(s, "<!doctype html") || strings.HasPrefix(s, "<html")
}

// htmlTitle returns the text of the page's <title>, or else its first <h1>.
func htmlTitle(body []byte) string {
	lower := strings.ToLower(string(body))
	for _, tag := range []string{"title", "h1"} {
		i := strings.Index(lower, "<"+tag)
		if i < 0 {
			continue
		}
		j := strings.IndexByte(lower[i:], '>')
		if j < 0 {
			continue
		}
		start := i + j + 1
		end := strings.Index(lower[start:], "</"+tag)
		if end < 0 {
			continue
		}
		if t := strings.TrimSpace(html.UnescapeString(string(body[start : start+end]))); t != "" {
			return t
		}
	}
	return ""
}

// maxRetryAfter bounds what a Retry-After header can ask for.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if err != nil || n > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// maxDescription is the longest Description kept, in characters.
const maxDescription = 200

// sanitize makes s safe to show: control characters become spaces,
// whitespace is collapsed, each secret and anything that looks like a token
// is replaced by tokensender.Redact, and the result is cut to 200
// characters.
func sanitize(s string, secrets []string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}), " ")
	for _, sec := range secrets {
		if len(sec) < 4 {
			continue
		}
		s = strings.ReplaceAll(s, sec, tokensender.Redact(sec))
		if esc := url.QueryEscape(sec); esc != sec {
			s = strings.ReplaceAll(s, esc, tokensender.Redact(sec))
		}
	}
	s = redactTokenLike(s)
	if utf8.RuneCountInString(s) > maxDescription {
		r := []rune(s)
		s = string(r[:maxDescription-3]) + "..."
	}
	return s
}

// minTokenLike is the length from which a run of token characters that
// mixes letters and digits is taken for a secret.
const minTokenLike = 40

// redactTokenLike replaces long runs of base64/URL characters that contain
// both letters and digits (Schwab's tokens and codes) with their Redact form.
func redactTokenLike(s string) string {
	isTok := func(r rune) bool {
		return r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("._~+/=@%-", r))
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isTok(rune(s[j])) {
			j++
		}
		if j == i {
			_, n := utf8.DecodeRuneInString(s[i:])
			b.WriteString(s[i : i+n])
			i += n
			continue
		}
		w := s[i:j]
		if len(w) >= minTokenLike && strings.ContainsAny(w, "0123456789") &&
			strings.IndexFunc(w, unicode.IsLetter) >= 0 {
			w = tokensender.Redact(w)
		}
		b.WriteString(w)
		i = j
	}
	return b.String()
}
