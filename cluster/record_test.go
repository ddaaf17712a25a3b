package cluster

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/secretbox"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

func loginToken(tag string) tokensender.Token {
	return tokensender.Token{
		AccessToken:          "access-" + tag + "-" + strings.Repeat("b", 24),
		RefreshToken:         "refresh-" + tag + "-" + strings.Repeat("c", 24),
		TokenType:            "Bearer",
		Scope:                "api",
		ExpiresIn:            1800,
		ExpiresAt:            time.Unix(1_800_000_000, 0),
		RefreshTokenIssuedAt: time.Unix(1_799_998_200, 0),
	}
}

func testKey(b byte) *[32]byte {
	var k [32]byte
	for i := range k {
		k[i] = b + byte(i)
	}
	return &k
}

func testRecord() Record {
	return Record{Token: loginToken("rec"), Writer: "host-a", Reason: ReasonLogin, WrittenAt: time.Unix(1_799_998_300, 0), Seq: 7}
}

func TestCodec_RoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		codec Codec
	}{{"clear", Codec{}}, {"sealed", NewCodec(testKey(1))}} {
		t.Run(tc.name, func(t *testing.T) {
			want := testRecord()
			b, err := tc.codec.Encode("/p/token", want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.codec.Decode("/p/token", b)
			if err != nil {
				t.Fatal(err)
			}
			if got.Token != want.Token || got.Writer != want.Writer || got.Reason != want.Reason || !got.WrittenAt.Equal(want.WrittenAt) || got.Seq != want.Seq {
				t.Fatalf("round trip: got %+v, want %+v", got, want)
			}
			if tc.codec.Encrypted() != (tc.name == "sealed") {
				t.Fatal("Encrypted() is wrong")
			}
		})
	}
}

// A record of exactly the size limit is read; a sealed value with an empty
// plaintext is opened (and then found not to be a record).
func TestCodec_SizeEdges(t *testing.T) {
	b, err := Codec{}.Encode("/p/token", testRecord())
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, bytes.Repeat([]byte(" "), maxRecordBytes-len(b))...)
	if _, err := (Codec{}).Decode("/p/token", b); err != nil {
		t.Fatalf("a record of exactly %d bytes: %v", maxRecordBytes, err)
	}
	var nonce [nonceSize]byte
	empty := secretbox.Seal(append(append([]byte{}, sealedMagic...), nonce[:]...), nil, &nonce, testKey(1))
	if _, err := NewCodec(testKey(1)).Decode("/p/token", empty); err == nil || !strings.Contains(err.Error(), "not a token record") {
		t.Fatalf("empty sealed plaintext: %v", err)
	}
}

// An unknown login time stays unknown (zero), never the epoch.
func TestCodec_UnknownLoginTime(t *testing.T) {
	rec := testRecord()
	rec.Token.RefreshTokenIssuedAt = time.Time{}
	b, err := Codec{}.Encode("/p/token", rec)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("refresh_token_issued_at")) {
		t.Fatalf("unknown login time written: %s", b)
	}
	got, err := Codec{}.Decode("/p/token", b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Token.RefreshTokenIssuedAt.IsZero() {
		t.Fatalf("login time = %v, want unknown", got.Token.RefreshTokenIssuedAt)
	}
}

// Sealed records hold no token, nor any piece of one, nor the writer in
// clear; each sealing uses a fresh nonce.
func TestCodec_SealedHoldsNoToken(t *testing.T) {
	c := NewCodec(testKey(1))
	rec := testRecord()
	a, err := c.Encode("/p/token", rec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Encode("/p/token", rec)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Fatal("two sealings of one record are identical: nonce reused")
	}
	for _, secret := range []string{rec.Token.AccessToken, rec.Token.RefreshToken, rec.Token.AccessToken[:12], rec.Token.RefreshToken[8:20], "access_token"} {
		if bytes.Contains(a, []byte(secret)) {
			t.Fatalf("sealed record contains %q", secret)
		}
	}
	clear, err := Codec{}.Encode("/p/token", rec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(clear, []byte(rec.Token.AccessToken)) {
		t.Fatal("clear record lacks the token: the check above proves nothing")
	}
}

func TestCodec_Refusals(t *testing.T) {
	sealed, err := NewCodec(testKey(1)).Encode("/p/token", testRecord())
	if err != nil {
		t.Fatal(err)
	}
	clear, err := Codec{}.Encode("/p/token", testRecord())
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte{}, sealed...)
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct {
		name  string
		codec Codec
		key   string
		in    []byte
		want  string
		is    error
	}{
		{"sealed without key", Codec{}, "/p/token", sealed, "no key was given", ErrSealedRecord},
		{"clear with key", NewCodec(testKey(1)), "/p/token", clear, "not encrypted", ErrClearRecord},
		{"other key", NewCodec(testKey(2)), "/p/token", sealed, "cannot be opened with this key", nil},
		{"tampered", NewCodec(testKey(1)), "/p/token", tampered, "cannot be opened with this key", nil},
		{"short", NewCodec(testKey(1)), "/p/token", sealed[:len(sealedMagic)+10], "too short", nil},
		{"moved sealed", NewCodec(testKey(1)), "/q/token", sealed, `written for key "/p/token"`, nil},
		{"moved clear", Codec{}, "/q/token", clear, `written for key "/p/token"`, nil},
		{"garbage", Codec{}, "/p/token", []byte(`{"v":1,"token":{"access_token":"SECRETSECRET`), "invalid JSON", nil},
		{"syntax", Codec{}, "/p/token", []byte(`{"v":1,SECRETSECRET}`), "invalid JSON at byte", nil},
		{"type", Codec{}, "/p/token", []byte(`{"v":"1"}`), "field v has the wrong type", nil},
		{"unknown field", Codec{}, "/p/token", []byte(`{"v":1,"SECRETSECRET":1}`), "invalid JSON", nil},
		{"version", Codec{}, "/p/token", []byte(`{"v":2,"key":"/p/token"}`), "version 2", nil},
		{"huge", Codec{}, "/p/token", bytes.Repeat([]byte(" "), maxRecordBytes+1), "more than the", nil},
		{"no access token", Codec{}, "/p/token", []byte(`{"v":1,"key":"/p/token","token":{"refresh_token":"r","expires_at":5}}`), "token.access_token is empty", nil},
		{"no refresh token", Codec{}, "/p/token", []byte(`{"v":1,"key":"/p/token","token":{"access_token":"a","expires_at":5}}`), "token.refresh_token is empty", nil},
		{"no expiry", Codec{}, "/p/token", []byte(`{"v":1,"key":"/p/token","token":{"access_token":"a","refresh_token":"r"}}`), "expires_at is missing", nil},
		{"control char", Codec{}, "/p/token", []byte(`{"v":1,"key":"/p/token","token":{"access_token":"a\n","refresh_token":"r","expires_at":5}}`), "not printable ASCII (byte 1)", nil},
		{"long id token", Codec{}, "/p/token", []byte(`{"v":1,"key":"/p/token","token":{"access_token":"a","refresh_token":"r","id_token":"` + strings.Repeat("i", maxTokenLen+1) + `","expires_at":5}}`), "token.id_token is 4097 bytes", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.codec.Decode(tc.key, tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), loginToken("rec").AccessToken[:10]) {
				t.Fatalf("error quotes the value: %v", err)
			}
		})
	}
}

// The bounds apply on the way in too, at exactly the limits.
func TestCodec_EncodeBounds(t *testing.T) {
	rec := testRecord()
	rec.Token.AccessToken = strings.Repeat("x", maxTokenLen)
	if _, err := (Codec{}).Encode("/p/token", rec); err != nil {
		t.Fatalf("a token of exactly %d bytes: %v", maxTokenLen, err)
	}
	rec.Token.AccessToken += "x"
	if _, err := (Codec{}).Encode("/p/token", rec); err == nil {
		t.Fatal("an over-long token was encoded")
	}
	rec = testRecord()
	rec.Token.RefreshToken = "with space"
	if _, err := (Codec{}).Encode("/p/token", rec); err == nil || !strings.Contains(err.Error(), "refresh_token") {
		t.Fatalf("a token with a space: %v", err)
	}
	rec = testRecord()
	rec.Token.AccessToken = "a\x7f"
	if _, err := (Codec{}).Encode("/p/token", rec); err == nil {
		t.Fatal("a token with DEL was encoded")
	}
	rec.Token.AccessToken = "!~"
	if _, err := (Codec{}).Encode("/p/token", rec); err != nil {
		t.Fatalf("printable edge characters refused: %v", err)
	}
	rec.Token.ExpiresAt = time.Unix(1, 0)
	if _, err := (Codec{}).Encode("/p/token", rec); err != nil {
		t.Fatalf("expires_at 1: %v", err)
	}
	rec.Token.ExpiresAt = time.Unix(0, 0)
	if _, err := (Codec{}).Encode("/p/token", rec); err == nil {
		t.Fatal("expires_at 0 was encoded")
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestCodec_NonceFailure(t *testing.T) {
	c := NewCodec(testKey(1))
	c.Rand = failingReader{}
	if _, err := c.Encode("/p/token", testRecord()); err == nil || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("err = %v", err)
	}
}

func writeKey(t *testing.T, n int, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		mode os.FileMode
		want string // "" = accepted
	}{
		{"0600", 32, 0o600, ""},
		{"0400", 32, 0o400, ""},
		{"0640", 32, 0o640, "mode 0640"},
		{"0644", 32, 0o644, "chmod 600"},
		{"0604", 32, 0o604, "mode 0604"},
		{"0700", 32, 0o700, "mode 0700"},
		{"0200", 32, 0o200, "mode 0200"},
		{"short", 31, 0o600, "exactly 32 bytes (it has 31)"},
		{"long", 33, 0o600, "exactly 32 bytes (it has 33)"},
		{"empty", 0, 0o600, "exactly 32 bytes (it has 0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeKey(t, tc.size, tc.mode)
			key, err := LoadKey(p)
			if tc.want == "" {
				if err != nil || key == nil {
					t.Fatalf("LoadKey: %v", err)
				}
				want, _ := os.ReadFile(p)
				if !bytes.Equal(key[:], want) {
					t.Fatal("key bytes differ from the file")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v, want it to name %s and say %q", err, p, tc.want)
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		d := t.TempDir()
		if err := os.Chmod(d, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKey(d); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := LoadKey(filepath.Join(t.TempDir(), "nope")); err == nil || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v", err)
		}
	})
}
