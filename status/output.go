package status

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schwabtools/token-refresh-sender/logging"
)

// WriteText writes the report for a person: a first line in the Nagios
// style ("WARNING: ..."), then aligned "Label: value" lines with local times
// and how far away they are.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", strings.ToUpper(string(r.State)), r.Message)
	line := func(label, value string) { fmt.Fprintf(&b, "%-23s%s\n", label+":", value) }
	line("Token file", r.TokenFile)
	if r.loaded {
		now := r.CheckedAt
		switch t := r.AccessTokenExpiresAt; {
		case t == nil:
			line("Access token expires", "no access token in the file")
		case !now.Before(*t):
			line("Access token expires", logging.LocalTime(*t)+" ("+relative(*t, now, "expired")+")")
		default:
			line("Access token expires", logging.LocalTime(*t)+" ("+relative(*t, now, "")+")")
		}
		if t := r.RefreshTokenExpiresAt; t != nil {
			line("Refresh token expires", logging.LocalTime(*t)+" ("+relative(*t, now, "expired")+")")
		} else {
			line("Refresh token expires", "unknown (refresh_token_issued_at missing)")
		}
		if t := r.RefreshTokenIssuedAt; t != nil {
			line("Last login", logging.LocalTime(*t)+" ("+relative(*t, now, "")+")")
		} else {
			line("Last login", "unknown")
		}
		if t := r.LastRefreshAt; t != nil {
			line("Last refresh", logging.LocalTime(*t)+" ("+relative(*t, now, "")+")")
		} else {
			line("Last refresh", "unknown (creation_timestamp missing)")
		}
	}
	for _, s := range r.Sockets {
		line("Bot socket", s.Address.String()+": "+s.describe())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// describe is the socket's condition in words.
func (s SocketStatus) describe() string {
	switch {
	case s.Accepting:
		return "accepting connections"
	case !s.Present && s.Address.Network == "unix":
		return "not found (is the trading bot running?)"
	case s.Error == "not a socket":
		return "present, but not a socket"
	case s.Address.Network == "unix":
		return "present, but not accepting connections (" + s.Error + ")"
	}
	return "not accepting connections (" + s.Error + ")"
}

// jsonReport is the shape of WriteJSON's object, in key order.
type jsonReport struct {
	State                 State        `json:"state"`
	ExitCode              int          `json:"exit_code"`
	Message               string       `json:"message"`
	TokenFile             string       `json:"token_file"`
	CheckedAt             *string      `json:"checked_at"`
	AccessTokenExpiresAt  *string      `json:"access_token_expires_at"`
	RefreshTokenExpiresAt *string      `json:"refresh_token_expires_at"`
	RefreshTokenIssuedAt  *string      `json:"refresh_token_issued_at"`
	LastRefreshAt         *string      `json:"last_refresh_at"`
	Sockets               []jsonSocket `json:"sockets"`
}

type jsonSocket struct {
	Address   string  `json:"address"`
	Present   bool    `json:"present"`
	Accepting bool    `json:"accepting"`
	Error     *string `json:"error"`
}

// WriteJSON writes the report as one JSON object on one line: times in RFC
// 3339 (UTC) or null when unknown, and a socket's error null when it
// accepts connections.
func (r Report) WriteJSON(w io.Writer) error {
	out := jsonReport{
		State:                 r.State,
		ExitCode:              r.ExitCode(),
		Message:               r.Message,
		TokenFile:             r.TokenFile,
		AccessTokenExpiresAt:  rfc3339(r.AccessTokenExpiresAt),
		RefreshTokenExpiresAt: rfc3339(r.RefreshTokenExpiresAt),
		RefreshTokenIssuedAt:  rfc3339(r.RefreshTokenIssuedAt),
		LastRefreshAt:         rfc3339(r.LastRefreshAt),
		Sockets:               make([]jsonSocket, 0, len(r.Sockets)),
	}
	if !r.CheckedAt.IsZero() {
		out.CheckedAt = rfc3339(&r.CheckedAt)
	}
	for _, s := range r.Sockets {
		js := jsonSocket{Address: s.Address.String(), Present: s.Present, Accepting: s.Accepting}
		if s.Error != "" {
			e := s.Error
			js.Error = &e
		}
		out.Sockets = append(out.Sockets, js)
	}
	data, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("encode status: %w", err) // unreachable: strings and bools only
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

func rfc3339(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}
