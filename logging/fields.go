package logging

import (
	"log/slog"
	"time"
)

// Keys of the structured fields (see the package comment). The JSON format
// carries them; the text format leaves them out.
const (
	// KeyCycle is the refresh cycle's number, counted from 1 at start-up
	// (a number).
	KeyCycle = "cycle"
	// KeyNextRefresh is when the next refresh is due (RFC 3339 time).
	KeyNextRefresh = "next_refresh"
	// KeySocket is the bot address a delivery line is about, as given to
	// --socket (a string).
	KeySocket = "socket"
	// KeyResult is the outcome a line reports: for a refresh success,
	// transient_error or relogin_required; for a delivery the
	// token_sender_delivery_total result label (a string).
	KeyResult = "result"
	// KeyErrorClass is the class of a failure: transient or
	// relogin_required for a refresh, the delivery outcome for a delivery
	// (a string).
	KeyErrorClass = "error_class"
)

// field is a structured field's value: it resolves to the value itself,
// so slog's JSON handler writes it as usual, and it is recognisably ours
// before resolution, so TextHandler can leave it out.
type field struct{ v slog.Value }

// LogValue implements slog.LogValuer.
func (f field) LogValue() slog.Value { return f.v }

// Field is a structured field with any key: written by the JSON format,
// left out by the text format.
func Field(key string, value any) slog.Attr {
	return slog.Any(key, field{slog.AnyValue(value)})
}

// Cycle is the KeyCycle field.
func Cycle(n int) slog.Attr { return Field(KeyCycle, n) }

// NextRefresh is the KeyNextRefresh field.
func NextRefresh(t time.Time) slog.Attr { return Field(KeyNextRefresh, t) }

// Socket is the KeySocket field.
func Socket(addr string) slog.Attr { return Field(KeySocket, addr) }

// Result is the KeyResult field.
func Result(result string) slog.Attr { return Field(KeyResult, result) }

// ErrorClass is the KeyErrorClass field.
func ErrorClass(class string) slog.Attr { return Field(KeyErrorClass, class) }

// isField reports whether a is a structured field (text leaves it out).
func isField(a slog.Attr) bool {
	if a.Value.Kind() != slog.KindLogValuer {
		return false
	}
	_, ok := a.Value.Any().(field)
	return ok
}
