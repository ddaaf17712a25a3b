package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// TokenCmd prints the current access token from the token file for scripts
// in any language. It never refreshes and never takes the lock: the daemon
// replaces the file by an atomic rename, so a plain read sees a whole file.
type TokenCmd struct {
	Format   string        `default:"raw" enum:"raw,header,json" env:"TOKEN_SENDER_TOKEN_FORMAT" help:"raw (the access token and a newline), header (Authorization: Bearer ...) or json ({\"access_token\", \"expires_at\", \"token_type\"})."`
	MinValid time.Duration `default:"60s" env:"TOKEN_SENDER_TOKEN_MIN_VALID" help:"Fail (exit 1) unless the access token stays valid at least this long."`
}

// Exit codes of the token command.
const (
	tokenExitStale    = 1 // expired, or expiring within --min-valid
	tokenExitUnusable = 2 // no file, unreadable, malformed, or no access token in it
)

// Torn reads: another program (schwab-py) may rewrite the file in place,
// so a read can catch it empty or half-written. Such a read is retried
// tornReadTries times over about 100 ms before it counts.
const (
	tornReadTries = 6
	tornReadPause = 20 * time.Millisecond
)

// maxAccessToken bounds the token printed; Schwab's are a few hundred bytes.
const maxAccessToken = 4096

// Run prints the token and exits 0, or prints one line on stderr and exits
// 1 (expired or about to) or 2 (no usable token).
func (c *TokenCmd) Run(g *Globals, pr *process) error {
	p := tokenPrinter{
		path:  g.TokenFile,
		load:  tokenfile.Load,
		now:   time.Now,
		sleep: time.Sleep,
	}
	if code := p.print(c.Format, c.MinValid, pr.out, pr.err); code != 0 {
		return exitCode(code)
	}
	return nil
}

// tokenPrinter is the token command with its file reader and clock
// injected.
type tokenPrinter struct {
	path  string
	load  func(path string) (*tokenfile.Document, error)
	now   func() time.Time
	sleep func(time.Duration)
}

// print writes the access token in format to stdout when it is valid for
// at least minValid, and returns the exit code. Whatever goes wrong is one
// line on stderr, and stdout stays empty.
func (p tokenPrinter) print(format string, minValid time.Duration, stdout, stderr io.Writer) int {
	out, code, err := p.render(format, minValid)
	if err == nil {
		if _, werr := io.WriteString(stdout, out); werr != nil {
			err, code = fmt.Errorf("write the token: %w", werr), tokenExitUnusable
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "token-refresh-sender token:", err)
		return code
	}
	return 0
}

// render is the output for a usable token, or the exit code and the reason
// there is none.
func (p tokenPrinter) render(format string, minValid time.Duration) (string, int, error) {
	if minValid < 0 {
		return "", tokenExitUnusable, fmt.Errorf("--min-valid %v: must be zero or more (the default is 60s)", minValid)
	}
	tok, err := p.read()
	if errors.Is(err, tokenfile.ErrNotFound) {
		return "", tokenExitUnusable, fmt.Errorf("%w; run token-refresh-sender login to create it", err)
	}
	if err != nil {
		return "", tokenExitUnusable, err
	}
	if tok.AccessToken == "" || tok.ExpiresAt.IsZero() {
		return "", tokenExitUnusable, fmt.Errorf("token file %s: no access token with token.expires_at in it yet; "+
			"start the daemon (token-refresh-sender run) or run token-refresh-sender refresh", p.path)
	}
	if !usableToken(tok.AccessToken) {
		return "", tokenExitUnusable, fmt.Errorf("token file %s: token.access_token is not a usable token "+
			"(want 1 to %d printable ASCII characters without spaces); run token-refresh-sender refresh", p.path, maxAccessToken)
	}
	if t := tok.TokenType; t != "" && !strings.EqualFold(t, "Bearer") {
		return "", tokenExitUnusable, fmt.Errorf("token file %s: token.token_type is not Bearer; run token-refresh-sender refresh", p.path)
	}
	now := p.now()
	left := tok.ExpiresAt.Sub(now)
	switch {
	case left <= 0:
		return "", tokenExitStale, fmt.Errorf("the access token in %s expired %s ago; is the daemon running? (token-refresh-sender status)",
			p.path, tokensender.HumanDuration(-left))
	case left < minValid:
		return "", tokenExitStale, fmt.Errorf("the access token in %s expires in %s, less than --min-valid %s; is the daemon running? (token-refresh-sender status)",
			p.path, tokensender.HumanDuration(left), tokensender.HumanDuration(minValid))
	}
	switch format {
	case "header":
		return "Authorization: Bearer " + tok.AccessToken + "\n", 0, nil
	case "json":
		data, err := json.Marshal(struct {
			AccessToken string `json:"access_token"`
			ExpiresAt   int64  `json:"expires_at"`
			TokenType   string `json:"token_type"`
		}{tok.AccessToken, tok.ExpiresAt.Unix(), "Bearer"})
		if err != nil {
			return "", tokenExitUnusable, fmt.Errorf("encode the token: %w", err) // unreachable: a string and a number
		}
		return string(data) + "\n", 0, nil
	case "raw":
		return tok.AccessToken + "\n", 0, nil
	}
	return "", tokenExitUnusable, fmt.Errorf("--format %q: use raw, header or json", format)
}

// read loads the token file, re-reading one that is empty or malformed a
// few times: it may be caught in the middle of another program's in-place
// write. A missing or unreadable file is reported at once.
func (p tokenPrinter) read() (tokensender.Token, error) {
	var err error
	for try := 1; ; try++ {
		var doc *tokenfile.Document
		doc, err = p.load(p.path)
		if err == nil {
			return doc.Token(), nil
		}
		if !errors.Is(err, tokenfile.ErrInvalid) || try == tornReadTries {
			return tokensender.Token{}, err
		}
		p.sleep(tornReadPause)
	}
}

// usableToken reports whether s can be printed as a bearer token: 1 to
// maxAccessToken printable ASCII characters, no spaces, so it can go into
// an HTTP header or a shell variable as it is.
func usableToken(s string) bool {
	if s == "" || len(s) > maxAccessToken {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
