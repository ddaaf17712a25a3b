// Package logtext makes text from outside the program (a server's error
// description, a hook's output, a query parameter from the browser) safe to
// put in one log line: no newline can forge a second line, no terminal
// escape reaches the operator's screen, and the length is bounded.
//
// It imports the standard library only, so the public receiver package may
// use it.
package logtext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Ellipsis marks text that Clip has cut.
const Ellipsis = "..."

// Line returns s as one safe line: invalid UTF-8 becomes "?", every run of
// white space and non-printing characters (newlines, tabs, control and
// format characters) becomes one space, the ends are trimmed, and the
// result is clipped to max characters (Clip; max <= 0: no limit).
func Line(s string, max int) string {
	s = strings.Join(strings.FieldsFunc(strings.ToValidUTF8(s, "?"), func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}), " ")
	return Clip(s, max)
}

// Clip returns s unchanged when it has at most max characters (runes), and
// otherwise its first max-3 characters followed by "...", max in all (no
// room for "..." below 4: the first max characters). max <= 0 means no
// limit.
func Clip(s string, max int) string {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	if max <= len(Ellipsis) {
		return string(r[:max])
	}
	return string(r[:max-len(Ellipsis)]) + Ellipsis
}
