package tokenfile

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/internal/testkit"
)

// FuzzParse: Parse never panics, its errors are one line, and whatever it
// accepts survives Marshal -> Parse (twice the same bytes), also after Apply.
func FuzzParse(f *testing.F) {
	testkit.AddSeeds(f, filepath.Join("testdata", "*.json"))
	for _, s := range []string{
		validDoc, "", "{}", "[]", "null", `{"token": {}}`, `{"token": {"refresh_token": "r"}}`,
		`{"token": {"refresh_token": "r", "expires_at": 1.5e9, "expires_in": "x"}}`,
		`{"token": {"refresh_token": "\u00e9\ud83d\ude00<&>", "x": [{"y": null}]}, "token": {"refresh_token": "q"}}`,
		"{\"token\": {\"refresh_token\": \"r\"}}\n\n", "{\"a\":\n\"\xff\"}", `{"token": {"refresh_token": "r", "expires_at": 253402300800}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse("f.json", data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		out := d.Marshal()
		back, err := Parse("f.json", out)
		if err != nil {
			t.Fatalf("Marshal output does not parse: %v\n%s", err, out)
		}
		if diff := cmp.Diff(d.Token(), back.Token()); diff != "" {
			t.Fatalf("Token() changed by Marshal -> Parse (-before +after):\n%s", diff)
		}
		if !d.CreatedAt().Equal(back.CreatedAt()) {
			t.Fatalf("CreatedAt changed: %v -> %v", d.CreatedAt(), back.CreatedAt())
		}
		t1, ok1 := d.RefreshTokenIssuedAt()
		t2, ok2 := back.RefreshTokenIssuedAt()
		if ok1 != ok2 || !t1.Equal(t2) {
			t.Fatalf("RefreshTokenIssuedAt changed: %v,%v -> %v,%v", t1, ok1, t2, ok2)
		}
		if again := back.Marshal(); !bytes.Equal(out, again) {
			t.Fatalf("Marshal not stable:\n%s\n---\n%s", out, again)
		}

		now := time.Unix(1762990000, 0)
		tok := tokensender.Token{AccessToken: "A", ExpiresIn: 1800, RefreshTokenIssuedAt: back.Token().RefreshTokenIssuedAt}
		d.Apply(tok, now)
		applied, err := Parse("f.json", d.Marshal())
		if err != nil {
			t.Fatalf("after Apply, Marshal output does not parse: %v\n%s", err, d.Marshal())
		}
		want := back.Token()
		want.AccessToken, want.ExpiresIn, want.ExpiresAt = "A", 1800, now.Add(30*time.Minute)
		if diff := cmp.Diff(want, applied.Token()); diff != "" {
			t.Fatalf("Token() after Apply (-want +got):\n%s", diff)
		}
	})
}
