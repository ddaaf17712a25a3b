package tokenfile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/internal/jsonkind"
	"github.com/schwabtools/token-refresh-sender/internal/oserr"
)

// maxFileSize bounds what Load reads: a token file is well under 4 KiB, so
// anything bigger is the wrong file.
const maxFileSize = 1 << 20

// maxSeconds is 9999-12-31T23:59:59Z, the largest timestamp accepted.
const maxSeconds = 253402300799

// Key names of the schwab-py layout.
const (
	keyCreated     = "creation_timestamp"
	keyIssued      = "refresh_token_issued_at"
	keyToken       = "token"
	keyExpiresIn   = "expires_in"
	keyTokenType   = "token_type"
	keyScope       = "scope"
	keyRefresh     = "refresh_token"
	keyAccess      = "access_token"
	keyIDToken     = "id_token"
	keyExpiresAt   = "expires_at"
	fixOrLogin     = "; fix it or run token-refresh-sender login"
	runLoginSuffix = "; run token-refresh-sender login"
)

// Document is one token file in memory. It keeps every key of the file, known
// or not, in the file's order, with unknown values byte for byte, so a
// rewrite preserves what other tools stored. A Document is not safe for
// concurrent use; guard it or use Update. The zero Document is empty;
// use New or Parse to get a valid one.
type Document struct {
	top   object // top-level keys; the "token" member's value lives in token
	token object
}

// member is one key of a JSON object with its raw JSON value.
type member struct {
	key string
	val json.RawMessage
}

// object is a JSON object that remembers key order and raw values.
type object []member

func (o object) get(key string) (json.RawMessage, bool) {
	for _, m := range o {
		if m.key == key {
			return m.val, true
		}
	}
	return nil, false
}

// set replaces key's value in place, or appends key when it is new.
func (o *object) set(key string, val json.RawMessage) {
	for i := range *o {
		if (*o)[i].key == key {
			(*o)[i].val = val
			return
		}
	}
	*o = append(*o, member{key: key, val: val})
}

// del removes key if present.
func (o *object) del(key string) {
	*o = slices.DeleteFunc(*o, func(m member) bool { return m.key == key })
}

// decodeObject splits raw, which must be a valid JSON object, into its
// members. A repeated key keeps its first position and its last value, as
// encoding/json and Python's json module resolve duplicates.
func decodeObject(raw []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	o := object{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := t.(string)
		if !ok {
			return nil, fmt.Errorf("object key is %T, not a string", t)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		o.set(key, v)
	}
	return o, nil
}

func isNull(raw json.RawMessage) bool { return jsonkind.Of(raw) == "null" }

// fieldError is a wrong type or value of one field; name is the dotted key.
type fieldError struct{ name, msg string }

func (e *fieldError) Error() string { return e.name + " " + e.msg }

// stringField reads an optional string. Absent and null are both "not present".
func stringField(o object, key, name string) (string, bool, error) {
	raw, ok := o.get(key)
	if !ok || isNull(raw) {
		return "", false, nil
	}
	if k := jsonkind.Of(raw); k != "string" {
		return "", false, &fieldError{name, "must be a string, got " + k}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, &fieldError{name, "must be a string, got an unreadable string"}
	}
	return s, true, nil
}

// secondsField reads an optional count of seconds (a timestamp or a
// duration), integer or float; a fraction is dropped. Absent and null are
// both "not present".
func secondsField(o object, key, name string) (int64, bool, error) {
	raw, ok := o.get(key)
	if !ok || isNull(raw) {
		return 0, false, nil
	}
	if k := jsonkind.Of(raw); k != "number" {
		return 0, false, &fieldError{name, "must be a number, got " + k}
	}
	text := string(bytes.TrimSpace(raw))
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || math.IsNaN(f) || f < 0 || f > maxSeconds {
			return 0, false, outOfRange(name, text)
		}
		n = int64(math.Floor(f))
	}
	if n < 0 || n > maxSeconds {
		return 0, false, outOfRange(name, text)
	}
	return n, true, nil
}

func outOfRange(name, text string) error {
	if len(text) > 24 {
		text = text[:24] + "..."
	}
	return &fieldError{name, fmt.Sprintf("must be a number of seconds between 0 and %d, got %s", maxSeconds, text)}
}

// Load reads and parses the token file at path. A missing file gives an
// error matching ErrNotFound whose text is exactly "Token file not found:
// <path>"; a file that cannot be read gives "token file <path>: cannot read:
// <reason>"; bad content gives the errors described at Parse.
//
// A file that does not parse is re-read a few times over about 100 ms
// before that counts (another program may be writing it in place); one
// that kept changing all that time gives an error matching ErrInProgress
// instead of Parse's.
func Load(path string) (*Document, error) {
	return load(context.Background(), path, sleepCtx, time.Now)
}

// readFile reads the token file and returns its content and what it was
// read from, so that a re-read can tell a rewrite even when the bytes came
// out the same.
func readFile(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, &fileError{msg: "Token file not found: " + path, kind: ErrNotFound, err: err}
		}
		return nil, nil, readError(path, oserr.Reason(err), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, readError(path, oserr.Reason(err), err)
	}
	switch {
	case fi.IsDir():
		return nil, nil, readError(path, "is a directory", nil)
	case !fi.Mode().IsRegular():
		return nil, nil, readError(path, "not a regular file", nil)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, nil, readError(path, oserr.Reason(err), err)
	}
	if len(data) > maxFileSize {
		return nil, nil, &fileError{
			msg:  fmt.Sprintf("token file %s: larger than 1 MiB, so not a token file; check the path", path),
			kind: ErrInvalid,
		}
	}
	return data, fi, nil
}

// rewritten reports whether the file read as b was written or replaced
// since it was read as a: another inode, or another modification time.
// (The size is in the bytes, which the caller compares.)
func rewritten(a, b os.FileInfo) bool {
	return !os.SameFile(a, b) || !a.ModTime().Equal(b.ModTime())
}

func readError(path, why string, err error) error {
	return &fileError{msg: fmt.Sprintf("token file %s: cannot read: %s", path, why), err: err}
}

func invalid(path, msg string) error {
	return &fileError{msg: "token file " + path + ": " + msg, kind: ErrInvalid}
}

func noRefreshToken(path, msg string) error {
	return &fileError{msg: "token file " + path + ": " + msg, kind: ErrInvalid, also: ErrNoRefreshToken}
}

// Parse parses data, the content of the token file at path (used only in
// messages). Every error matches ErrInvalid and is one line, for example:
//
//	token file <path>: is empty; fix it or run token-refresh-sender login
//	token file <path>: malformed JSON at line 3, column 5: invalid character '}' ...; fix it or run token-refresh-sender login
//	token file <path>: token.refresh_token is missing or empty; run token-refresh-sender login
//	token file <path>: token.expires_at must be a number, got string; fix it or run token-refresh-sender login
//
// A missing token.access_token or token.expires_at is accepted (a refresh
// supplies both). Null counts as absent. No message contains a token value.
func Parse(path string, data []byte) (*Document, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, invalid(path, "is empty"+fixOrLogin)
	}
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se)
			return nil, invalid(path, fmt.Sprintf("malformed JSON at line %d, column %d: %s%s", line, col, se.Error(), fixOrLogin))
		}
		return nil, invalid(path, "malformed JSON: "+err.Error()+fixOrLogin)
	}
	if k := jsonkind.Of(raw); k != "object" {
		return nil, invalid(path, "top level must be a JSON object, got "+k+fixOrLogin)
	}
	top, err := decodeObject(raw)
	if err != nil {
		return nil, invalid(path, "malformed JSON: "+err.Error()+fixOrLogin)
	}
	d := &Document{top: top}

	tokRaw, ok := top.get(keyToken)
	if !ok || isNull(tokRaw) {
		return nil, noRefreshToken(path, "token object is missing"+runLoginSuffix)
	}
	if k := jsonkind.Of(tokRaw); k != "object" {
		return nil, invalid(path, "token must be a JSON object, got "+k+fixOrLogin)
	}
	if d.token, err = decodeObject(tokRaw); err != nil {
		return nil, invalid(path, "malformed JSON: "+err.Error()+fixOrLogin)
	}

	refresh, _, err := stringField(d.token, keyRefresh, "token.refresh_token")
	if err != nil {
		return nil, invalid(path, err.Error()+fixOrLogin)
	}
	if refresh == "" {
		return nil, noRefreshToken(path, "token.refresh_token is missing or empty"+runLoginSuffix)
	}
	for _, f := range []struct {
		o       object
		key     string
		name    string
		seconds bool
	}{
		{d.top, keyCreated, keyCreated, true},
		{d.top, keyIssued, keyIssued, true},
		{d.token, keyAccess, "token.access_token", false},
		{d.token, keyIDToken, "token.id_token", false},
		{d.token, keyTokenType, "token.token_type", false},
		{d.token, keyScope, "token.scope", false},
		{d.token, keyExpiresIn, "token.expires_in", true},
		{d.token, keyExpiresAt, "token.expires_at", true},
	} {
		if f.seconds {
			_, _, err = secondsField(f.o, f.key, f.name)
		} else {
			_, _, err = stringField(f.o, f.key, f.name)
		}
		if err != nil {
			return nil, invalid(path, err.Error()+fixOrLogin)
		}
	}
	return d, nil
}

// position turns a syntax error's byte offset into a 1-based line and
// column (in characters) of the offending byte, or of the end of the input
// when the input ended too early.
func position(data []byte, se *json.SyntaxError) (line, col int) {
	i := int(se.Offset) - 1 // Offset counts the offending byte itself
	if strings.HasPrefix(se.Error(), "unexpected end") {
		i = len(data)
	}
	i = max(0, min(i, len(data)))
	before := data[:i]
	line = 1 + bytes.Count(before, []byte{'\n'})
	start := bytes.LastIndexByte(before, '\n') + 1
	col = 1 + utf8.RuneCount(before[start:])
	return line, col
}

// New is the document for a fresh login: creation_timestamp is now,
// refresh_token_issued_at is tok.RefreshTokenIssuedAt or else now, and
// token holds tok (see Apply).
func New(tok tokensender.Token, now time.Time) *Document {
	d := &Document{top: object{
		{key: keyCreated},
		{key: keyIssued},
		{key: keyToken},
	}, token: object{}}
	if tok.RefreshTokenIssuedAt.IsZero() {
		tok.RefreshTokenIssuedAt = now
	}
	d.Apply(tok, now)
	return d
}

// Token is the token the file holds. AccessToken is empty when the file has
// none; ExpiresAt is the zero time when token.expires_at is absent, and
// RefreshTokenIssuedAt when refresh_token_issued_at is.
func (d *Document) Token() tokensender.Token {
	var t tokensender.Token
	t.AccessToken, _, _ = stringField(d.token, keyAccess, "")
	t.RefreshToken, _, _ = stringField(d.token, keyRefresh, "")
	t.IDToken, _, _ = stringField(d.token, keyIDToken, "")
	t.TokenType, _, _ = stringField(d.token, keyTokenType, "")
	t.Scope, _, _ = stringField(d.token, keyScope, "")
	t.ExpiresIn, _, _ = secondsField(d.token, keyExpiresIn, "")
	if at, ok, _ := secondsField(d.token, keyExpiresAt, ""); ok {
		t.ExpiresAt = time.Unix(at, 0)
	}
	t.RefreshTokenIssuedAt, _ = d.RefreshTokenIssuedAt()
	return t
}

// CreatedAt is creation_timestamp: the time of the last refresh (or login).
// It is the zero time when the key is absent.
func (d *Document) CreatedAt() time.Time {
	if s, ok, _ := secondsField(d.top, keyCreated, ""); ok {
		return time.Unix(s, 0)
	}
	return time.Time{}
}

// RefreshTokenIssuedAt is when the current refresh token was issued (the
// login), from refresh_token_issued_at. ok is false when the key is absent,
// for example after another tool rewrote the file: the refresh token's age
// is then unknown and must not be guessed.
func (d *Document) RefreshTokenIssuedAt() (t time.Time, ok bool) {
	if s, ok, _ := secondsField(d.top, keyIssued, ""); ok {
		return time.Unix(s, 0), true
	}
	return time.Time{}, false
}

// Apply records a refreshed token at now, as the seed program did:
// creation_timestamp = now; token.access_token; token.refresh_token (the old
// one is kept when tok has none); token.expires_in; token.expires_at =
// tok.ExpiresAt (now + ExpiresIn when tok.ExpiresAt is zero); token_type,
// scope and id_token when tok has them. refresh_token_issued_at is
// tok.RefreshTokenIssuedAt, which the caller works out (the login time it
// knows); a zero time removes the key, so the age reads as unknown rather
// than wrong. Every other key is kept.
func (d *Document) Apply(tok tokensender.Token, now time.Time) {
	if _, ok := d.top.get(keyToken); !ok {
		d.top.set(keyToken, nil)
	}
	d.top.set(keyCreated, intJSON(now.Unix()))

	expiresAt := tok.ExpiresAt
	if expiresAt.IsZero() {
		expiresAt = now.Add(tok.Lifetime())
	}
	d.token.set(keyExpiresIn, intJSON(tok.ExpiresIn))
	if tok.TokenType != "" {
		d.token.set(keyTokenType, stringJSON(tok.TokenType))
	}
	if tok.Scope != "" {
		d.token.set(keyScope, stringJSON(tok.Scope))
	}
	if tok.RefreshToken != "" {
		d.token.set(keyRefresh, stringJSON(tok.RefreshToken))
	}
	if tok.RefreshTokenIssuedAt.IsZero() {
		d.top.del(keyIssued)
	} else {
		d.top.set(keyIssued, intJSON(tok.RefreshTokenIssuedAt.Unix()))
	}
	d.token.set(keyAccess, stringJSON(tok.AccessToken))
	if tok.IDToken != "" {
		d.token.set(keyIDToken, stringJSON(tok.IDToken))
	}
	d.token.set(keyExpiresAt, intJSON(expiresAt.Unix()))
}

// Marshal is the file's content: JSON indented with 4 spaces like Python's
// json.dump(indent=4), keys in the document's order, integers written as
// integers, and a trailing newline.
func (d *Document) Marshal() []byte {
	b := []byte{'{'}
	for i, m := range d.top {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, stringJSON(m.key)...)
		b = append(b, ':')
		if m.key == keyToken {
			b = d.token.appendJSON(b)
		} else {
			b = append(b, m.val...)
		}
	}
	b = append(b, '}')
	var out bytes.Buffer
	out.Grow(len(b) * 2)
	if err := json.Indent(&out, b, "", "    "); err != nil {
		// Unreachable: every value came from a valid document or from
		// stringJSON/intJSON. Keep the compact form rather than lose data.
		return append(b, '\n')
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func (o object) appendJSON(b []byte) []byte {
	b = append(b, '{')
	for i, m := range o {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, stringJSON(m.key)...)
		b = append(b, ':')
		b = append(b, m.val...)
	}
	return append(b, '}')
}

func intJSON(n int64) json.RawMessage { return strconv.AppendInt(nil, n, 10) }

// stringJSON encodes s without HTML escaping, so "<", ">" and "&" stay as
// they are (Python does not escape them either).
func stringJSON(s string) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}
