package tokenfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

func TestStore_SaveKeepsUnknownKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "schwab_tokens.json")
	orig := `{"creation_timestamp": 1, "mine": {"x": [1, 2]}, "token": {"refresh_token": "r-old", "access_token": "a-old", "expires_at": 2, "extra": true}}`
	if err := os.WriteFile(path, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &tokenfile.Store{Path: path}
	if _, err := s.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1762983055, 0)
	tok := tokensender.Token{AccessToken: "a-new", RefreshToken: "r-old", ExpiresIn: 1800, ExpiresAt: now.Add(30 * time.Minute)}
	if err := s.Save(tok, now); err != nil {
		t.Fatal(err)
	}
	got, err := tokenfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if g := got.Token(); g.AccessToken != "a-new" || g.ExpiresAt.Unix() != 1762984855 {
		t.Errorf("saved token = %+v", g)
	}
	data, _ := os.ReadFile(path)
	for _, want := range []string{`"mine"`, `"extra": true`, `"creation_timestamp": 1762983055`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("saved file lacks %s:\n%s", want, data)
		}
	}
}

func TestStore_SaveWithoutLoadFails(t *testing.T) {
	s := &tokenfile.Store{Path: filepath.Join(t.TempDir(), "t.json")}
	if err := s.Save(tokensender.Token{}, time.Now()); err == nil {
		t.Fatal("Save without Load succeeded")
	}
}
