package receiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// Token is one valid token received from the sender. Printed with %v,
// %+v, %#v or through slog it shows only a short prefix of each secret.
type Token struct {
	AccessToken  string
	RefreshToken string
	ExpiresAt    time.Time // whole seconds
}

// String shows the token with its secrets redacted, so a stray %v in the
// bot's log never prints a whole token.
func (t Token) String() string {
	return fmt.Sprintf("receiver.Token{access %s, refresh %s, expires %s}",
		tokensender.Redact(t.AccessToken), tokensender.Redact(t.RefreshToken), t.ExpiresAt.UTC().Format(time.RFC3339))
}

// GoString is String, for %#v.
func (t Token) GoString() string { return t.String() }

// LogValue keeps slog from printing the secrets.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// Format makes every verb (%v, %+v, %s, %q, %x ...) print String, so no
// verb shows the secrets.
func (t Token) Format(f fmt.State, verb rune) {
	s := t.String()
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	_, _ = f.Write([]byte(s))
}

// Errors a rejected message wraps; test with errors.Is.
var (
	// ErrInvalidMessage: not JSON, not an object, or a field missing, empty
	// or of the wrong type.
	ErrInvalidMessage = errors.New("invalid token message")
	// ErrExpired: expires_at is not after now.
	ErrExpired = errors.New("token expired")
	// ErrTooLarge: the message is longer than MaxSize.
	ErrTooLarge = errors.New("token message too large")
	// ErrIncomplete: the sender did not end its message (close its write
	// side) within ReadTimeout.
	ErrIncomplete = errors.New("token message incomplete")
	// ErrAccept: accepting a connection failed (this side's trouble, not
	// the sender's).
	ErrAccept = errors.New("accept")
)

// maxExpiresAt is the start of year 10000: anything later is not a time.
const maxExpiresAt = 253402300800

// rejectError is why a message was refused. answer is what goes back to the
// sender after "ERROR: "; it is short because senders read at most 64 bytes.
type rejectError struct {
	kind   error
	detail string
	answer string
}

func (e *rejectError) Error() string { return e.kind.Error() + ": " + e.detail }
func (e *rejectError) Unwrap() error { return e.kind }

func invalid(format string, args ...any) error {
	s := fmt.Sprintf(format, args...)
	return &rejectError{kind: ErrInvalidMessage, detail: s, answer: s}
}

// ParseMessage checks one message as the sender writes it and returns the
// token. Required: access_token and refresh_token (non-empty strings) and
// expires_at (a JSON number of Unix seconds; a fractional value is truncated to
// whole seconds). Other fields are ignored. A token with expires_at <= now is
// rejected with ErrExpired. Errors never contain token text.
func ParseMessage(b []byte, now time.Time) (Token, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case len(b) == 0:
			return Token{}, invalid("empty message")
		case errors.As(err, &syn) && syn.Offset >= int64(len(b)):
			return Token{}, invalid("not valid JSON: it ends early (truncated?)")
		case errors.As(err, &syn):
			return Token{}, invalid("not valid JSON (syntax error at byte %d)", syn.Offset)
		case errors.As(err, &typ):
			return Token{}, invalid("not a JSON object but %s", jsonType(b))
		default:
			return Token{}, invalid("not valid JSON")
		}
	}
	if fields == nil {
		return Token{}, invalid("not a JSON object but null")
	}
	var t Token
	var err error
	if t.AccessToken, err = stringField(fields, "access_token"); err != nil {
		return Token{}, err
	}
	if t.RefreshToken, err = stringField(fields, "refresh_token"); err != nil {
		return Token{}, err
	}
	sec, err := secondsField(fields, "expires_at")
	if err != nil {
		return Token{}, err
	}
	t.ExpiresAt = time.Unix(sec, 0)
	if !now.Before(t.ExpiresAt) {
		at := t.ExpiresAt.UTC().Format(time.RFC3339)
		return Token{}, &rejectError{
			kind:   ErrExpired,
			detail: fmt.Sprintf("expires_at %s is not after now (%s)", at, now.UTC().Format(time.RFC3339)),
			answer: "token expired at " + at,
		}
	}
	return t, nil
}

func stringField(fields map[string]json.RawMessage, name string) (string, error) {
	raw, ok := fields[name]
	if !ok {
		return "", invalid("field %q is missing", name)
	}
	if typ := jsonType(raw); typ != "string" {
		return "", invalid("field %q must be a string, not %s", name, typ)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid("field %q is not a valid string", name)
	}
	if s == "" {
		return "", invalid("field %q is empty", name)
	}
	return s, nil
}

func secondsField(fields map[string]json.RawMessage, name string) (int64, error) {
	raw, ok := fields[name]
	if !ok {
		return 0, invalid("field %q is missing", name)
	}
	if typ := jsonType(raw); typ != "number" {
		return 0, invalid("field %q must be Unix seconds, not %s", name, typ)
	}
	sec, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(raw), 64)
		if ferr != nil {
			return 0, invalid("field %q is out of range", name)
		}
		// Clamped before the conversion, which is undefined beyond int64;
		// the range check below then refuses what was clamped.
		sec = int64(math.Floor(max(0, min(f, maxExpiresAt))))
	}
	if sec <= 0 || sec >= maxExpiresAt {
		return 0, invalid("field %q is out of range", name)
	}
	return sec, nil
}

// jsonType names the type of a valid JSON value from its first byte.
func jsonType(raw []byte) string {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '"':
			return "string"
		case '{':
			return "object"
		case '[':
			return "array"
		case 't', 'f':
			return "boolean"
		case 'n':
			return "null"
		}
		return "number"
	}
	return "nothing"
}
