package tokenfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecondsField_bounds(t *testing.T) {
	for text, want := range map[string]int64{
		"0": 0, "0.0": 0, "253402300799": maxSeconds, "253402300799.0": maxSeconds, "1.9": 1,
	} {
		d, err := Parse("f.json", []byte(`{"token": {"refresh_token": "r", "expires_at": `+text+`}}`))
		if err != nil {
			t.Errorf("%s refused: %v", text, err)
			continue
		}
		if got := d.Token().ExpiresAt.Unix(); got != want {
			t.Errorf("%s read as %d, want %d", text, got, want)
		}
	}
	for _, text := range []string{"-1", "-0.5", "253402300800", "253402300799.5"} {
		if _, err := Parse("f.json", []byte(`{"token": {"refresh_token": "r", "expires_at": `+text+`}}`)); err == nil {
			t.Errorf("%s accepted", text)
		}
	}
}

func TestOutOfRange_cutsLongValues(t *testing.T) {
	exact := "-" + strings.Repeat("1", 23) // 24 characters: shown whole
	if got := outOfRange("x", exact).Error(); !strings.HasSuffix(got, "got "+exact) {
		t.Errorf("24 characters: %q", got)
	}
	if got := outOfRange("x", exact+"2").Error(); !strings.HasSuffix(got, "got "+exact+"...") {
		t.Errorf("25 characters: %q", got)
	}
}

func TestLoad_sizeLimit(t *testing.T) {
	dir := t.TempDir()
	doc := `{"token": {"refresh_token": "r"}}`
	exact := filepath.Join(dir, "exact.json")
	if err := os.WriteFile(exact, []byte(doc+strings.Repeat(" ", maxFileSize-len(doc))), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(exact); err != nil {
		t.Errorf("a file of exactly 1 MiB: %v", err)
	}
}
