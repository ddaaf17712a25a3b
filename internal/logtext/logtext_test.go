package logtext_test

import (
	"strings"
	"testing"

	"github.com/schwabtools/token-refresh-sender/internal/logtext"
)

func TestLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"plain text unchanged", "invalid_grant", 0, "invalid_grant"},
		{"empty", "", 10, ""},
		{"newline cannot start a second line", "bad\n[2025-11-13 08:44:23] INFO: forged", 0, "bad [2025-11-13 08:44:23] INFO: forged"},
		{"runs folded, ends trimmed", "  a \r\n\t b  ", 0, "a b"},
		{"terminal escape removed", "NO\x1b[31mpe", 0, "NO [31mpe"},
		{"DEL and NUL removed", "a\x7fb\x00c", 0, "a b c"},
		{"format character removed", "a\u200bb", 0, "a b"},
		{"line separator folded", "a\u2028b", 0, "a b"},
		{"invalid UTF-8 becomes ?", "a\xffb", 0, "a?b"},
		{"printable non-ASCII kept", "café ünïcode", 0, "café ünïcode"},
		{"clipped after folding", "a\n\n\nbcdefgh", 6, "a b..."},
		{"exactly max kept", "abcdef", 6, "abcdef"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := logtext.Line(tc.in, tc.max); got != tc.want {
				t.Errorf("Line(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
		})
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"no limit", strings.Repeat("x", 500), 0, strings.Repeat("x", 500)},
		{"negative is no limit", "abc", -1, "abc"},
		{"short kept", "abc", 5, "abc"},
		{"exactly max kept", "abcde", 5, "abcde"},
		{"one over is cut to max", "abcdef", 5, "ab..."},
		{"counts characters, not bytes", "ééééé", 5, "ééééé"},
		{"cuts on character boundaries", "éééééé", 5, "éé..."},
		{"no room for the ellipsis", "abcdef", 3, "abc"},
		{"room for one character and the ellipsis", "abcdef", 4, "a..."},
		{"whitespace kept as is", "a\nb", 5, "a\nb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := logtext.Clip(tc.in, tc.max); got != tc.want {
				t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
		})
	}
}
