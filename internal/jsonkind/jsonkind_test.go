package jsonkind_test

import (
	"testing"

	"github.com/schwabtools/token-refresh-sender/internal/jsonkind"
)

func TestOf(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{`"x"`, "string"},
		{`{"a":1}`, "object"},
		{`[1]`, "array"},
		{`true`, "boolean"},
		{`false`, "boolean"},
		{`null`, "null"},
		{`12`, "number"},
		{`-1.5e3`, "number"},
		{" \t\r\n\"after white space\"", "string"},
		{"\n null", "null"},
		{``, "nothing"},
		{" \t\r\n", "nothing"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			if got := jsonkind.Of([]byte(tc.raw)); got != tc.want {
				t.Errorf("Of(%q) = %q, want %q", tc.raw, got, tc.want)
			}
		})
	}
}
