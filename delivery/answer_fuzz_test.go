package delivery

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"unicode"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// FuzzJudgeAnswer feeds arbitrary bot answers to the acknowledgment
// handling: only "OK" (with surrounding whitespace) counts as delivered,
// an empty answer at a clean end of stream is a delivery without
// acknowledgment, and whatever is logged of an answer is short, printable
// and never repeats the token.
func FuzzJudgeAnswer(f *testing.F) {
	for _, seed := range []string{"OK", " OK\n", "ok", "ERROR", "ERROR: token expired", "", "OK OK", "\x00\xff", "OKAY",
		"I0.access-token-value-that-is-long@"} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	msg := tokensender.Message{AccessToken: "I0.access-token-value-that-is-long@", RefreshToken: "refresh-token-value-that-is-long@", ExpiresAt: 1762984855}
	f.Fuzz(func(t *testing.T, answer []byte, timedOut bool) {
		if len(answer) > maxAnswer {
			answer = answer[:maxAnswer]
		}
		var readErr error
		if timedOut {
			readErr = os.ErrDeadlineExceeded
		}
		tr := &targetRun{cfg: (&Sender{}).config(), msg: msg}
		r := tr.judgeAnswer(answer, readErr)
		trimmed := string(bytes.TrimSpace(answer))
		switch {
		case trimmed == "OK" && len(answer) > 0:
			if r.kind != delivered {
				t.Fatalf("answer %q: kind %d, want delivered", answer, r.kind)
			}
		case len(answer) == 0 && readErr == nil:
			if r.kind != deliveredNoAck {
				t.Fatalf("empty answer at EOF: kind %d, want deliveredNoAck", r.kind)
			}
		default:
			if r.kind == delivered || r.kind == deliveredNoAck {
				t.Fatalf("answer %q (timeout %v) counted as delivered", answer, timedOut)
			}
			if r.err == nil {
				t.Fatalf("answer %q: no reason given", answer)
			}
		}
		shown := r.answer
		if r.err != nil {
			shown += r.err.Error()
		}
		for _, secret := range []string{msg.AccessToken, msg.RefreshToken} {
			for i := 0; i+12 <= len(secret); i++ {
				if strings.Contains(shown, secret[i:i+12]) {
					t.Fatalf("logged answer %q repeats the token", shown)
				}
			}
		}
		if r.answer != "" {
			if len(r.answer) > 4*maxAnswer+2 || strings.ContainsFunc(r.answer, func(c rune) bool { return !unicode.IsPrint(c) }) {
				t.Fatalf("logged answer %q is not short and printable", r.answer)
			}
		}
		if errors.Is(r.err, os.ErrDeadlineExceeded) {
			t.Fatalf("raw deadline error leaked into the reason")
		}
	})
}
