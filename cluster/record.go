package cluster

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/crypto/nacl/secretbox"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// Record is the one token record under <prefix>/token: the token set with
// its login time, and who wrote it, why and when.
type Record struct {
	// Token is the token set; Token.RefreshTokenIssuedAt is the login time
	// (zero when unknown).
	Token tokensender.Token
	// Writer is the node name of the instance that wrote the record.
	Writer string
	// Reason is why it was written: ReasonSeed, ReasonRefresh or ReasonLogin.
	Reason string
	// WrittenAt is when the writer stored it (its clock, whole seconds).
	WrittenAt time.Time
	// Seq counts the writes since the first record: each write stores the
	// previous record's Seq plus one.
	Seq uint64

	// ModRevision is the etcd revision of the write that stored this
	// record (filled in when read; not part of the stored value).
	ModRevision int64
}

// Reasons a record is written.
const (
	ReasonSeed    = "seed"    // the first leader copied its local token file
	ReasonRefresh = "refresh" // the leader refreshed the access token
	ReasonLogin   = "login"   // a browser login produced a new token set
)

// Bounds on what a record may hold, as for the token file.
const (
	maxTokenLen    = 4096
	maxRecordBytes = 64 << 10
	keySize        = 32
	nonceSize      = 24
)

// sealedMagic starts every sealed record, so a reader tells a sealed record
// from a clear one (JSON, starting with '{') before trying to open it.
var sealedMagic = []byte("trs-secretbox-v1:")

// Codec turns records into stored values and back. With a key it seals
// them with NaCl secretbox (XSalsa20-Poly1305), so etcd, its snapshots and
// its backups never hold a usable token; without one they are clear JSON.
// The zero Codec stores records in clear.
type Codec struct {
	key *[keySize]byte
	// Rand is the nonce source; nil means crypto/rand.
	Rand io.Reader
}

// NewCodec returns a Codec that seals with key (nil: clear records).
func NewCodec(key *[32]byte) Codec { return Codec{key: key} }

// Encrypted reports whether records are sealed.
func (c Codec) Encrypted() bool { return c.key != nil }

// ErrSealedRecord means a record is sealed and this instance has no key.
var ErrSealedRecord = errors.New("the token record in etcd is encrypted, but no key was given: pass the cluster's --etcd-encryption-key-file")

// ErrClearRecord means a record is in clear although this instance seals
// records: it was written by an instance without the key, or by someone
// who does not have it. It is refused.
var ErrClearRecord = errors.New("the token record in etcd is not encrypted, but this instance has an encryption key: give every instance the same --etcd-encryption-key-file (the record was refused)")

// wireRecord is the record's stored JSON.
type wireRecord struct {
	Version   int       `json:"v"`
	Key       string    `json:"key"`
	Writer    string    `json:"writer"`
	Reason    string    `json:"reason"`
	WrittenAt int64     `json:"written_at"`
	Seq       uint64    `json:"seq"`
	Token     wireToken `json:"token"`
}

type wireToken struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token,omitempty"`
	TokenType    string `json:"token_type,omitempty"`
	Scope        string `json:"scope,omitempty"`
	ExpiresIn    int64  `json:"expires_in"`
	ExpiresAt    int64  `json:"expires_at"`
	// RefreshTokenIssuedAt is the login time; absent when unknown.
	RefreshTokenIssuedAt int64 `json:"refresh_token_issued_at,omitempty"`
}

// Encode returns the stored value of r under the etcd key key. The key is
// inside the (sealed) value, so a record copied to another key or another
// app's prefix is refused by Decode.
func (c Codec) Encode(key string, r Record) ([]byte, error) {
	if err := checkToken(r.Token); err != nil {
		return nil, fmt.Errorf("encode token record: %w", err)
	}
	w := wireRecord{
		Version: 1, Key: key, Writer: r.Writer, Reason: r.Reason, WrittenAt: r.WrittenAt.Unix(), Seq: r.Seq,
		Token: wireToken{
			AccessToken: r.Token.AccessToken, RefreshToken: r.Token.RefreshToken, IDToken: r.Token.IDToken,
			TokenType: r.Token.TokenType, Scope: r.Token.Scope,
			ExpiresIn: r.Token.ExpiresIn, ExpiresAt: r.Token.ExpiresAt.Unix(),
		},
	}
	if !r.Token.RefreshTokenIssuedAt.IsZero() {
		w.Token.RefreshTokenIssuedAt = r.Token.RefreshTokenIssuedAt.Unix()
	}
	plain, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode token record: %w", err)
	}
	if c.key == nil {
		return plain, nil
	}
	var nonce [nonceSize]byte
	src := c.Rand
	if src == nil {
		src = rand.Reader
	}
	if _, err := io.ReadFull(src, nonce[:]); err != nil {
		return nil, fmt.Errorf("seal token record: read nonce: %w", err)
	}
	out := append(append([]byte{}, sealedMagic...), nonce[:]...)
	return secretbox.Seal(out, plain, &nonce, c.key), nil
}

// Decode parses the stored value b read from the etcd key key. Errors
// never quote the value.
func (c Codec) Decode(key string, b []byte) (Record, error) {
	if len(b) > maxRecordBytes {
		return Record{}, fmt.Errorf("token record %s: %d bytes, more than the %d a record can hold", key, len(b), maxRecordBytes)
	}
	sealed := bytes.HasPrefix(b, sealedMagic)
	switch {
	case sealed && c.key == nil:
		return Record{}, fmt.Errorf("token record %s: %w", key, ErrSealedRecord)
	case !sealed && c.key != nil:
		return Record{}, fmt.Errorf("token record %s: %w", key, ErrClearRecord)
	case sealed:
		rest := b[len(sealedMagic):]
		if len(rest) < nonceSize+secretbox.Overhead {
			return Record{}, fmt.Errorf("token record %s: sealed value too short (%d bytes)", key, len(b))
		}
		var nonce [nonceSize]byte
		copy(nonce[:], rest)
		plain, ok := secretbox.Open(nil, rest[nonceSize:], &nonce, c.key)
		if !ok {
			return Record{}, fmt.Errorf("token record %s: cannot be opened with this key (another key sealed it, or it was altered): give every instance the same --etcd-encryption-key-file", key)
		}
		b = plain
	}
	var w wireRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Record{}, fmt.Errorf("token record %s: not a token record: %s", key, jsonProblem(err))
	}
	if w.Version != 1 {
		return Record{}, fmt.Errorf("token record %s: version %d, this program reads version 1 (upgrade it)", key, w.Version)
	}
	if w.Key != key {
		return Record{}, fmt.Errorf("token record %s: written for key %q; refusing a record copied from elsewhere", key, w.Key)
	}
	r := Record{
		Writer: w.Writer, Reason: w.Reason, WrittenAt: time.Unix(w.WrittenAt, 0), Seq: w.Seq,
		Token: tokensender.Token{
			AccessToken: w.Token.AccessToken, RefreshToken: w.Token.RefreshToken, IDToken: w.Token.IDToken,
			TokenType: w.Token.TokenType, Scope: w.Token.Scope,
			ExpiresIn: w.Token.ExpiresIn, ExpiresAt: time.Unix(w.Token.ExpiresAt, 0),
		},
	}
	if w.Token.RefreshTokenIssuedAt != 0 {
		r.Token.RefreshTokenIssuedAt = time.Unix(w.Token.RefreshTokenIssuedAt, 0)
	}
	if err := checkToken(r.Token); err != nil {
		return Record{}, fmt.Errorf("token record %s: %w", key, err)
	}
	return r, nil
}

// jsonProblem describes a JSON error without quoting the input: a syntax
// error's message can carry a piece of a token.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s has the wrong type", typ.Field)
	}
	return "invalid JSON"
}

// checkToken applies the token file's bounds to a record's token.
func checkToken(t tokensender.Token) error {
	for _, f := range []struct{ name, v string }{
		{"access_token", t.AccessToken}, {"refresh_token", t.RefreshToken},
	} {
		if f.v == "" {
			return fmt.Errorf("token.%s is empty", f.name)
		}
	}
	for _, f := range []struct{ name, v string }{
		{"access_token", t.AccessToken}, {"refresh_token", t.RefreshToken}, {"id_token", t.IDToken},
	} {
		if len(f.v) > maxTokenLen {
			return fmt.Errorf("token.%s is %d bytes, more than %d", f.name, len(f.v), maxTokenLen)
		}
		for i := 0; i < len(f.v); i++ {
			if f.v[i] < 0x21 || f.v[i] > 0x7e {
				return fmt.Errorf("token.%s holds a character that is not printable ASCII (byte %d)", f.name, i)
			}
		}
	}
	if t.ExpiresAt.Unix() <= 0 {
		return errors.New("token.expires_at is missing")
	}
	return nil
}

// LoadKey reads a 32-byte secretbox key from path. The file must be a
// regular file with mode 0600 or 0400: a key other users can read protects
// nothing.
func LoadKey(path string) (*[32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("etcd encryption key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("etcd encryption key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("etcd encryption key file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 && perm != 0o400 {
		return nil, fmt.Errorf("etcd encryption key file %s: mode %#o lets others read or change it; run: chmod 600 %s", path, perm, path)
	}
	var key [keySize]byte
	n, err := io.ReadFull(f, key[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("etcd encryption key file %s: %w", path, err)
	}
	extra, _ := f.Read(make([]byte, 1))
	if n != keySize || extra != 0 {
		return nil, fmt.Errorf("etcd encryption key file %s: must hold exactly 32 bytes (it has %d); create one with: head -c 32 /dev/urandom > %s && chmod 600 %s", path, fi.Size(), path, path)
	}
	return &key, nil
}
