package receiver

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

const (
	secretAccess  = "I0.SECRETACCESS-0123456789@"
	secretRefresh = "SECRETREFRESH-0123456789@"
)

var testNow = time.Unix(1762983055, 0)

func TestParseMessage(t *testing.T) {
	good := tokensender.Message{AccessToken: secretAccess, RefreshToken: secretRefresh, ExpiresAt: 1762984855}
	tests := []struct {
		name    string
		in      string
		want    Token  // when wantErr is nil
		wantErr error  // sentinel
		wantMsg string // substring of the error
	}{
		{name: "sender's wire format", in: string(good.Wire()),
			want: Token{secretAccess, secretRefresh, time.Unix(1762984855, 0)}},
		{name: "compact, trailing newline, extra fields ignored",
			in:   `{"expires_at":1762984855,"refresh_token":"r","access_token":"a","id_token":"x","expires_in":1800}` + "\n",
			want: Token{"a", "r", time.Unix(1762984855, 0)}},
		{name: "float expires_at truncated", in: `{"access_token":"a","refresh_token":"r","expires_at":1762984855.9}`,
			want: Token{"a", "r", time.Unix(1762984855, 0)}},
		{name: "exponent expires_at", in: `{"access_token":"a","refresh_token":"r","expires_at":1.762984855e9}`,
			want: Token{"a", "r", time.Unix(1762984855, 0)}},
		{name: "escaped strings decoded", in: `{"access_token":"a\u00e9\"","refresh_token":"r","expires_at":1762984855}`,
			want: Token{"aé\"", "r", time.Unix(1762984855, 0)}},
		{name: "last second of year 9999", in: `{"access_token":"a","refresh_token":"r","expires_at":253402300799}`,
			want: Token{"a", "r", time.Unix(253402300799, 0)}},
		{name: "last second of year 9999 as float", in: `{"access_token":"a","refresh_token":"r","expires_at":253402300799.5}`,
			want: Token{"a", "r", time.Unix(253402300799, 0)}},
		{name: "one second before expiry", in: `{"access_token":"a","refresh_token":"r","expires_at":1762983056}`,
			want: Token{"a", "r", time.Unix(1762983056, 0)}},

		{name: "empty", in: ``, wantErr: ErrInvalidMessage, wantMsg: "empty message"},
		{name: "truncated", in: string(good.Wire()[:40]), wantErr: ErrInvalidMessage, wantMsg: "ends early"},
		{name: "garbage", in: `{"access_token": ` + secretAccess + `}`, wantErr: ErrInvalidMessage, wantMsg: "syntax error at byte 18"},
		{name: "trailing data", in: string(good.Wire()) + `{}`, wantErr: ErrInvalidMessage, wantMsg: "syntax error"},
		{name: "array", in: `["` + secretAccess + `"]`, wantErr: ErrInvalidMessage, wantMsg: "not a JSON object but array"},
		{name: "null", in: `null`, wantErr: ErrInvalidMessage, wantMsg: "not a JSON object but null"},
		{name: "string", in: `"` + secretAccess + `"`, wantErr: ErrInvalidMessage, wantMsg: "not a JSON object but string"},
		{name: "missing access_token", in: `{"refresh_token":"` + secretRefresh + `","expires_at":1762984855}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "access_token" is missing`},
		{name: "missing expires_at", in: `{"access_token":"` + secretAccess + `","refresh_token":"` + secretRefresh + `"}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "expires_at" is missing`},
		{name: "key case matters", in: `{"Access_Token":"a","refresh_token":"r","expires_at":1762984855}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "access_token" is missing`},
		{name: "access_token null", in: `{"access_token":null,"refresh_token":"r","expires_at":1762984855}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "access_token" must be a string, not null`},
		{name: "refresh_token number", in: `{"access_token":"` + secretAccess + `","refresh_token":12,"expires_at":1762984855}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "refresh_token" must be a string, not number`},
		{name: "refresh_token object", in: `{"access_token":"a","refresh_token":{"v":"` + secretRefresh + `"},"expires_at":1762984855}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "refresh_token" must be a string, not object`},
		{name: "empty access_token", in: `{"access_token":"","refresh_token":"r","expires_at":1762984855}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "access_token" is empty`},
		{name: "expires_at string", in: `{"access_token":"a","refresh_token":"r","expires_at":"1762984855"}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "expires_at" must be Unix seconds, not string`},
		{name: "expires_at bool", in: `{"access_token":"a","refresh_token":"r","expires_at":true}`,
			wantErr: ErrInvalidMessage, wantMsg: `not boolean`},
		{name: "expires_at negative", in: `{"access_token":"a","refresh_token":"r","expires_at":-5}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "expires_at" is out of range`},
		{name: "expires_at huge", in: `{"access_token":"a","refresh_token":"r","expires_at":1e300}`,
			wantErr: ErrInvalidMessage, wantMsg: `out of range`},
		{name: "expires_at beyond int64", in: `{"access_token":"a","refresh_token":"r","expires_at":99999999999999999999}`,
			wantErr: ErrInvalidMessage, wantMsg: `out of range`},
		{name: "expires_at zero", in: `{"access_token":"a","refresh_token":"r","expires_at":0}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "expires_at" is out of range`},
		{name: "expires_at 0.0", in: `{"access_token":"a","refresh_token":"r","expires_at":0.0}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "expires_at" is out of range`},
		{name: "expires_at 0.9", in: `{"access_token":"a","refresh_token":"r","expires_at":0.9}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "expires_at" is out of range`},
		{name: "expires_at -0.5", in: `{"access_token":"a","refresh_token":"r","expires_at":-0.5}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "expires_at" is out of range`},
		{name: "expires_at year 10000", in: `{"access_token":"a","refresh_token":"r","expires_at":253402300800}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "expires_at" is out of range`},
		{name: "expires_at year 10000 as float", in: `{"access_token":"a","refresh_token":"r","expires_at":253402300800.0}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "expires_at" is out of range`},
		{name: "expires_at beyond float64", in: `{"access_token":"a","refresh_token":"r","expires_at":1e400}`,
			wantErr: ErrInvalidMessage, wantMsg: `field "expires_at" is out of range`},
		{name: "expired now", in: `{"access_token":"` + secretAccess + `","refresh_token":"r","expires_at":1762983055}`,
			wantErr: ErrExpired, wantMsg: "token expired: expires_at 2025-11-12T21:30:55Z is not after now (2025-11-12T21:30:55Z)"},
		{name: "expired long ago", in: `{"access_token":"a","refresh_token":"r","expires_at":1}`,
			wantErr: ErrExpired, wantMsg: "1970-01-01T00:00:01Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMessage([]byte(tt.in), testNow)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("ParseMessage: %v", err)
				}
				if got.AccessToken != tt.want.AccessToken || got.RefreshToken != tt.want.RefreshToken || !got.ExpiresAt.Equal(tt.want.ExpiresAt) {
					t.Errorf("ParseMessage = %+v, want %+v", got, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseMessage error = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			if got != (Token{}) {
				t.Errorf("rejected message returned a token: %+v", got)
			}
			assertNoSecret(t, err.Error())
			var rej *rejectError
			if !errors.As(err, &rej) || len("ERROR: "+rej.answer) > maxAnswer {
				t.Errorf("answer for %v missing or longer than %d bytes", err, maxAnswer)
			} else {
				assertNoSecret(t, rej.answer)
			}
		})
	}
}

func assertNoSecret(tb testing.TB, s string) {
	tb.Helper()
	for _, secret := range []string{"SECRETACCESS", "SECRETREFRESH"} {
		if strings.Contains(s, secret) {
			tb.Errorf("%q contains token text", s)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(tokensender.Message{AccessToken: "I0.abc@", RefreshToken: "r@", ExpiresAt: 1762984855}.Wire()))
	f.Add([]byte(`{"access_token":"a","refresh_token":"r","expires_at":1.5e9,"x":[1,{"y":null}]}`))
	f.Add([]byte(`{"access_token":"a","refresh_token":"r","expires_at":"1"}`))
	f.Add([]byte(`{"access_token":"\ud83d\ude00","refresh_token":"r","expires_at":253402300799}`))
	f.Add([]byte(`{"access_token":"a","access_token":"b","refresh_token":"r","expires_at":2e9}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"access_tok`))
	f.Fuzz(func(t *testing.T, in []byte) {
		tok, err := ParseMessage(in, testNow)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) && !errors.Is(err, ErrExpired) {
				t.Fatalf("error %v wraps neither ErrInvalidMessage nor ErrExpired", err)
			}
			var rej *rejectError
			if !errors.As(err, &rej) || len("ERROR: "+rej.answer) > maxAnswer {
				t.Fatalf("answer for %v missing or too long", err)
			}
			return
		}
		if tok.AccessToken == "" || tok.RefreshToken == "" || !tok.ExpiresAt.After(testNow) {
			t.Fatalf("accepted an invalid token: %+v", tok)
		}
		if !json.Valid(in) {
			t.Fatalf("accepted invalid JSON %q", in)
		}
		// What was accepted survives the sender's encoding unchanged.
		wire := tokensender.Message{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, ExpiresAt: tok.ExpiresAt.Unix()}.Wire()
		again, err := ParseMessage(wire, testNow)
		if err != nil || again != tok {
			t.Fatalf("round trip of %+v through Wire: %+v, %v", tok, again, err)
		}
	})
}
