package tokensender_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

func TestMessage_Wire(t *testing.T) {
	tests := []struct {
		name string
		msg  tokensender.Message
		want string
	}{
		{
			name: "python json.dumps spacing and key order",
			msg:  tokensender.Message{AccessToken: "I0.abc", RefreshToken: "xyz@", ExpiresAt: 1762984855},
			want: `{"access_token": "I0.abc", "refresh_token": "xyz@", "expires_at": 1762984855}`,
		},
		{
			name: "escapes like ensure_ascii",
			msg:  tokensender.Message{AccessToken: "a\"b\\c\n<&>\x7f", RefreshToken: "é😀", ExpiresAt: 0},
			want: `{"access_token": "a\"b\\c\n<&>\u007f", "refresh_token": "\u00e9\ud83d\ude00", "expires_at": 0}`,
		}, {
			name: "a real-sized access token with a short refresh token",
			msg:  tokensender.Message{AccessToken: strings.Repeat("A", 200), RefreshToken: "r", ExpiresAt: 1},
			want: `{"access_token": "` + strings.Repeat("A", 200) + `", "refresh_token": "r", "expires_at": 1}`,
		},
		{
			name: "a short access token with a long refresh token",
			msg:  tokensender.Message{AccessToken: "a", RefreshToken: strings.Repeat("R", 200), ExpiresAt: 1},
			want: `{"access_token": "a", "refresh_token": "` + strings.Repeat("R", 200) + `", "expires_at": 1}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(tt.msg.Wire())
			if got != tt.want {
				t.Fatalf("Wire() =\n%s\nwant\n%s", got, tt.want)
			}
			var back struct {
				AccessToken  string `json:"access_token"`
				RefreshToken string `json:"refresh_token"`
				ExpiresAt    int64  `json:"expires_at"`
			}
			if err := json.Unmarshal([]byte(got), &back); err != nil {
				t.Fatalf("Wire() is not valid JSON: %v", err)
			}
			if back.AccessToken != tt.msg.AccessToken || back.RefreshToken != tt.msg.RefreshToken || back.ExpiresAt != tt.msg.ExpiresAt {
				t.Fatalf("round trip = %+v, want %+v", back, tt.msg)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	long := "I0.b2F1dGgyLmJkYy5zY2h3YWIuY29tA3c0aGVyZWlzYXZlcnlsb25ndG9rZW4@"
	got := tokensender.Redact(long)
	if got != "I0.b2F1d..." {
		t.Errorf("Redact(long) = %q", got)
	}
	if strings.Contains(got, long[8:]) {
		t.Errorf("Redact leaks more than a prefix: %q", got)
	}
	if got := tokensender.Redact("abc"); got != "..." {
		t.Errorf("Redact(short) = %q, want only the ellipsis", got)
	}
	if got := tokensender.Redact(""); got != "(empty)" {
		t.Errorf("Redact(empty) = %q", got)
	}
}

func TestToken_Expired(t *testing.T) {
	at := time.Unix(1762984855, 0)
	tok := tokensender.Token{ExpiresAt: at}
	if tok.Expired(at.Add(-time.Second)) {
		t.Error("expired one second early")
	}
	if !tok.Expired(at) {
		t.Error("not expired at expires_at")
	}
	if got := tok.Message().ExpiresAt; got != 1762984855 {
		t.Errorf("Message().ExpiresAt = %d", got)
	}
}

func BenchmarkMessage_Wire(b *testing.B) {
	msg := tokensender.Message{AccessToken: "I0.b2F1dGgyLmJkYy5zY2h3YWIuY29tA3c0aGVyZWlzYXZlcnlsb25ndG9rZW4@", RefreshToken: "tGpK0b2F1dGgyLmJkYy5zY2h3YWIuY29tA3c0aGVyZWlzYXZlcnlsb25n@", ExpiresAt: 1762984855}
	b.ReportAllocs()
	for b.Loop() {
		_ = msg.Wire()
	}
}

func TestToken_formattingNeverShowsSecrets(t *testing.T) {
	tok := tokensender.Token{AccessToken: "I0.access-secret-value-0123456789@", RefreshToken: "refresh-secret-value-0123456789@", ExpiresAt: time.Unix(1762984855, 0)}
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "token", tok, "msg", tok.Message())
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok), fmt.Sprintf("%v %+v %#v", tok.Message(), tok.Message(), tok.Message()), buf.String()} {
		if strings.Contains(out, "secret-value") {
			t.Errorf("formatting shows a secret: %s", out)
		}
		if !strings.Contains(out, "...") {
			t.Errorf("formatting shows no prefix at all: %s", out)
		}
	}
}

func TestToken_LoginTime(t *testing.T) {
	login := time.Unix(1762900000, 0)
	own := time.Unix(1762950000, 0)
	seen := time.Unix(1762983055, 700_000_000) // mid-second: the file keeps whole seconds
	held := tokensender.Token{RefreshToken: "r-1", RefreshTokenIssuedAt: login}
	tests := []struct {
		name string
		t    tokensender.Token
		prev tokensender.Token
		want time.Time
	}{
		{"same refresh token, login time dropped by another writer: restored",
			tokensender.Token{RefreshToken: "r-1"}, held, login},
		{"refresh response without a refresh token keeps the login time",
			tokensender.Token{}, held, login},
		{"the token's own login time wins",
			tokensender.Token{RefreshToken: "r-1", RefreshTokenIssuedAt: own}, held, own},
		{"new refresh token with its own login time (a login wrote the file)",
			tokensender.Token{RefreshToken: "r-2", RefreshTokenIssuedAt: own}, held, own},
		{"new refresh token without one: when we first saw it",
			tokensender.Token{RefreshToken: "r-2"}, held, time.Unix(1762983055, 0)},
		{"new refresh token, previous login time unknown: when we first saw it",
			tokensender.Token{RefreshToken: "r-2"}, tokensender.Token{RefreshToken: "r-1"}, time.Unix(1762983055, 0)},
		{"same refresh token, login time never known: stays unknown",
			tokensender.Token{RefreshToken: "r-1"}, tokensender.Token{RefreshToken: "r-1"}, time.Time{}},
		{"nothing held before: unknown, never guessed",
			tokensender.Token{RefreshToken: "r-1"}, tokensender.Token{}, time.Time{}},
		{"nothing held before, the token knows it",
			tokensender.Token{RefreshToken: "r-1", RefreshTokenIssuedAt: own}, tokensender.Token{}, own},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.t.LoginTime(tt.prev, seen)
			if !got.Equal(tt.want) || got.IsZero() != tt.want.IsZero() {
				t.Errorf("LoginTime = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestToken_LifetimeAndExpired(t *testing.T) {
	at := time.Unix(1762984855, 0)
	tok := tokensender.Token{ExpiresIn: 1800, ExpiresAt: at}
	if got := tok.Lifetime(); got != 30*time.Minute {
		t.Errorf("Lifetime = %v, want 30m", got)
	}
	for _, tt := range []struct {
		now  time.Time
		want bool
	}{
		{at.Add(-time.Second), false},
		{at, true},
		{at.Add(time.Second), true},
	} {
		if got := tok.Expired(tt.now); got != tt.want {
			t.Errorf("Expired(%v) = %v, want %v", tt.now, got, tt.want)
		}
	}
}
