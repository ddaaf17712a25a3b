package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/internal/oserr"
	"github.com/schwabtools/token-refresh-sender/logging"
)

// Defaults for the zero values of Sender's fields.
const (
	DefaultDialTimeout = 5 * time.Second
	DefaultAckTimeout  = 5 * time.Second
	DefaultRetryDelay  = 5 * time.Second
	DefaultAttempts    = 3
)

// maxAnswer is the most of the bot's answer that is read.
const maxAnswer = 64

// MaxMessageSize is the protocol's limit on one message, in bytes
// (docs/protocol.md): a larger message is never sent.
const MaxMessageSize = 8192

// Sender delivers tokens to trading bots. Set the fields, then call Deliver
// or Send; do not change them while a delivery runs. A Sender must not be
// copied after its first delivery.
type Sender struct {
	Targets     []Address
	Logger      *slog.Logger
	DialTimeout time.Duration // connecting; default 5s
	AckTimeout  time.Duration // writing the message and waiting for the answer; default 5s
	RetryDelay  time.Duration // between attempts; default 5s
	Attempts    int           // per target and token; default 3
	// AllowedPeerUIDs may receive tokens besides this process's own uid and
	// root (--allow-peer-uid): the uid of the process listening on a Unix
	// socket, or owning the listening TCP socket.
	AllowedPeerUIDs []int
	// OnResults, if set, is called once per Deliver with the final results
	// (retries included), in Targets order, before Deliver's wait returns.
	OnResults func([]Result)

	lookup     peerLookup // nil fields: the kernel's answers
	mu         sync.Mutex
	cancelPrev context.CancelCauseFunc
}

// Outcome is how delivering one token to one target ended.
type Outcome int

const (
	// Delivered: the bot answered OK.
	Delivered Outcome = iota
	// DeliveredNoAck: the bot took the message and closed the connection
	// without answering (the C++ TokenReceiver does this). Not resent.
	DeliveredNoAck
	// NotFound: the socket file does not exist, the bot is not running.
	NotFound
	// Failed: every attempt failed.
	Failed
	// Canceled: the context was cancelled, or a newer Deliver on the same
	// Sender replaced this one, before the token got through.
	Canceled
	// Withheld: the socket's listener runs as a user not allowed to
	// receive tokens (someone else created the socket or took the port),
	// or that user could not be found. Not retried.
	Withheld
)

// outcomeNames are each Outcome's words: for people (String) and for
// metric labels and log fields (Label).
var outcomeNames = [...]struct{ text, label string }{
	Delivered:      {"delivered", "delivered"},
	DeliveredNoAck: {"delivered without acknowledgment", "delivered_no_ack"},
	NotFound:       {"not found", "not_found"},
	Failed:         {"failed", "failed"},
	Canceled:       {"canceled", "canceled"},
	Withheld:       {"withheld", "withheld"},
}

func (o Outcome) known() bool { return o >= 0 && int(o) < len(outcomeNames) }

func (o Outcome) String() string {
	if !o.known() {
		return "Outcome(" + strconv.Itoa(int(o)) + ")"
	}
	return outcomeNames[o].text
}

// Label is the outcome as a metric label and a log field value:
// delivered, delivered_no_ack, not_found, failed, canceled, withheld
// (unknown for anything else).
func (o Outcome) Label() string {
	if !o.known() {
		return "unknown"
	}
	return outcomeNames[o].label
}

// Result is the final word on one target.
type Result struct {
	Target   Address
	Outcome  Outcome
	Attempts int   // attempts started (0 if cancelled before the first)
	Err      error // why it was not delivered; nil for Delivered and DeliveredNoAck
}

// Delivery is one token on its way to every target.
type Delivery struct {
	results []Result
	done    chan struct{}
}

// Wait blocks until every target is finished, retries included, and returns
// the results in Targets order.
func (d *Delivery) Wait() []Result {
	<-d.done
	return append([]Result(nil), d.results...)
}

// Done is closed when every target is finished.
func (d *Delivery) Done() <-chan struct{} { return d.done }

// errSuperseded is the cancel cause when a newer Deliver replaces this one.
var errSuperseded = errors.New("a newer token replaced it")

// Deliver sends msg to every target, like Send, for the refresh loop: it
// returns once every target has finished its first attempt (and logged it);
// wait blocks until the retries are over too and OnResults has seen the
// results.
func (s *Sender) Deliver(ctx context.Context, msg tokensender.Message) (wait func()) {
	d := s.start(ctx, msg, s.OnResults)
	return func() { <-d.done }
}

// Send sends msg to every target concurrently. It returns once every target
// has finished its first attempt, after logging those attempts in Targets
// order; retries go on in the background and log as they happen. A new
// Send or Deliver on the same Sender stops the retries of the previous one,
// so an old token never overwrites a newer one at the bot. Cancelling ctx
// stops everything at once; it is logged at INFO, as the caller's choice
// (a newer token, or the program stopping), not as a failure. Cancel with
// context.WithCancelCause to give the reason the log line shows.
// OnResults is not called.
func (s *Sender) Send(ctx context.Context, msg tokensender.Message) *Delivery {
	return s.start(ctx, msg, nil)
}

// start runs one delivery; onDone, if set, gets the final results before
// the Delivery is done.
func (s *Sender) start(ctx context.Context, msg tokensender.Message, onDone func([]Result)) *Delivery {
	ctx, cancel := context.WithCancelCause(ctx)
	s.mu.Lock()
	if s.cancelPrev != nil {
		s.cancelPrev(errSuperseded)
	}
	s.cancelPrev = cancel
	s.mu.Unlock()

	cfg := s.config()
	d := &Delivery{results: make([]Result, len(s.Targets)), done: make(chan struct{})}
	first := make([]chan record, len(s.Targets))
	firstLogged := make(chan struct{})
	wire := msg.Wire()
	var wg sync.WaitGroup
	for i, target := range s.Targets {
		first[i] = make(chan record, 1)
		wg.Go(func() {
			t := &targetRun{cfg: cfg, target: target, wire: wire, msg: msg, res: &d.results[i]}
			t.res.Target = target
			if len(s.Targets) > 1 {
				t.suffix = " (" + target.String() + ")"
			}
			t.run(ctx, first[i], firstLogged)
		})
	}
	for _, ch := range first {
		cfg.log(<-ch)
	}
	close(firstLogged)
	go func() {
		wg.Wait()
		cancel(context.Canceled) // release the context; no-op if already cancelled
		if onDone != nil {
			onDone(append([]Result(nil), d.results...))
		}
		close(d.done)
	}()
	return d
}

// config is a Sender's settings with defaults applied.
type config struct {
	logger                              *slog.Logger
	dialTimeout, ackTimeout, retryDelay time.Duration
	attempts                            int
	allowedUIDs                         []int
	lookup                              peerLookup
}

func (s *Sender) config() config {
	c := config{s.Logger, s.DialTimeout, s.AckTimeout, s.RetryDelay, s.Attempts, s.AllowedPeerUIDs, s.lookup.withDefaults()}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.dialTimeout <= 0 {
		c.dialTimeout = DefaultDialTimeout
	}
	if c.ackTimeout <= 0 {
		c.ackTimeout = DefaultAckTimeout
	}
	if c.retryDelay < 0 {
		c.retryDelay = 0
	} else if c.retryDelay == 0 {
		c.retryDelay = DefaultRetryDelay
	}
	if c.attempts <= 0 {
		c.attempts = DefaultAttempts
	}
	return c
}

type logLine struct {
	level slog.Level
	msg   string
}

// record is a log line with its structured fields (JSON format only).
type record struct {
	logLine
	attrs []slog.Attr
}

func (c config) log(r record) {
	c.logger.LogAttrs(context.Background(), r.level, r.msg, r.attrs...)
}

// targetRun is the delivery of one token to one target.
type targetRun struct {
	cfg    config
	target Address
	wire   []byte
	msg    tokensender.Message
	suffix string
	res    *Result
}

// run makes up to cfg.attempts attempts. The first attempt's log line goes to
// first; later lines are logged directly, but only after firstLogged is
// closed so they never come before the first-attempt lines.
func (t *targetRun) run(ctx context.Context, first chan<- record, firstLogged <-chan struct{}) {
	// Every line names the socket; the line that ends the delivery to this
	// target (done) also carries its result, and the class of a failure.
	emit := func(l logLine, fields ...slog.Attr) {
		r := record{l, append(fields, logging.Socket(t.target.String()))}
		if first != nil {
			first <- r
			first = nil
			return
		}
		<-firstLogged
		t.cfg.log(r)
	}
	done := func(l logLine) {
		result := t.res.Outcome.Label()
		if t.res.Outcome == Delivered || t.res.Outcome == DeliveredNoAck {
			emit(l, logging.Result(result))
		} else {
			emit(l, logging.Result(result), logging.ErrorClass(result))
		}
	}
	n := t.cfg.attempts
	if len(t.wire) > MaxMessageSize {
		t.res.Outcome, t.res.Attempts = Failed, 0
		t.res.Err = fmt.Errorf("the message is %d bytes, over the protocol's limit of %d bytes", len(t.wire), MaxMessageSize)
		done(logLine{slog.LevelError, fmt.Sprintf("Not sending token to trading bot: %s; a token that long is not a real Schwab token%s", t.res.Err, t.suffix)})
		return
	}
	for i := 1; ; i++ {
		if ctx.Err() != nil {
			done(t.canceled(ctx, i-1))
			return
		}
		t.res.Attempts = i
		r := t.attempt(ctx)
		switch r.kind {
		case delivered:
			t.res.Outcome, t.res.Err = Delivered, nil
			done(logLine{slog.LevelInfo, "Token successfully sent to trading bot" + t.suffix})
			return
		case deliveredNoAck:
			t.res.Outcome, t.res.Err = DeliveredNoAck, nil
			done(logLine{slog.LevelWarn, "Token sent to trading bot, but the bot sent no acknowledgment (connection closed without OK)" + t.suffix})
			return
		case notFound:
			t.res.Outcome = NotFound
			t.res.Err = r.err
			done(logLine{slog.LevelWarn, "Bot socket not found - trading bot may not be running" + t.suffix})
			return
		case canceled:
			done(t.canceled(ctx, i))
			return
		case withheld:
			t.res.Outcome, t.res.Err = Withheld, r.err
			done(logLine{slog.LevelError, fmt.Sprintf("Withheld token from %s: %s", t.target, r.err)})
			return
		}
		t.res.Err = r.err
		if i >= n {
			t.res.Outcome = Failed
			done(logLine{slog.LevelError, fmt.Sprintf("Failed to send token to trading bot after %s: %s%s",
				plural(n, "attempt"), r.err, t.suffix)})
			return
		}
		retry := "retrying in " + tokensender.HumanDuration(t.cfg.retryDelay)
		if r.kind == badAnswer {
			emit(logLine{slog.LevelWarn, fmt.Sprintf("Trading bot answered %s instead of OK (attempt %d/%d); %s%s",
				r.answer, i, n, retry, t.suffix)})
		} else {
			emit(logLine{slog.LevelWarn, fmt.Sprintf("Could not send token to trading bot (attempt %d/%d): %s; %s%s",
				i, n, r.err, retry, t.suffix)})
		}
		timer := time.NewTimer(t.cfg.retryDelay)
		select {
		case <-ctx.Done():
			timer.Stop()
			done(t.canceled(ctx, i))
			return
		case <-timer.C:
		}
	}
}

// canceled records and words a delivery stopped by ctx after done
// attempts. Cancelling is the caller's decision (a newer token replaced
// this one, or the program is stopping), so it is logged at INFO, with the
// cause the caller gave, if any.
func (t *targetRun) canceled(ctx context.Context, done int) logLine {
	cause := context.Cause(ctx)
	t.res.Outcome = Canceled
	t.res.Attempts = done
	t.res.Err = cause
	why := cause.Error()
	if cause == context.Canceled {
		why = "delivery cancelled"
	}
	return logLine{slog.LevelInfo, fmt.Sprintf("Stopped sending token to trading bot after %d of %s: %s%s",
		done, plural(t.cfg.attempts, "attempt"), why, t.suffix)}
}

type attemptKind int

const (
	delivered attemptKind = iota
	deliveredNoAck
	notFound
	retryable
	badAnswer
	canceled
	withheld
)

type attemptResult struct {
	kind   attemptKind
	answer string // quoted, sanitized answer for badAnswer
	err    error  // short reason, never containing token data
}

// attempt makes one connection and classifies how it went.
func (t *targetRun) attempt(ctx context.Context) attemptResult {
	d := net.Dialer{Timeout: t.cfg.dialTimeout}
	conn, err := d.DialContext(ctx, t.target.Network, t.target.Addr)
	if err != nil {
		if ctx.Err() != nil {
			return attemptResult{kind: canceled}
		}
		if t.target.Network == "unix" && errors.Is(err, syscall.ENOENT) {
			return attemptResult{kind: notFound, err: fmt.Errorf("socket %s does not exist", t.target.Addr)}
		}
		if oserr.Timeout(err) {
			return attemptResult{kind: retryable, err: fmt.Errorf("could not connect within %s", tokensender.HumanDuration(t.cfg.dialTimeout))}
		}
		return attemptResult{kind: retryable, err: oserr.Cause(err)}
	}
	defer conn.Close()
	if err := t.checkPeer(conn); err != nil {
		return attemptResult{kind: withheld, err: err}
	}

	if err := conn.SetDeadline(time.Now().Add(t.cfg.ackTimeout)); err != nil {
		return attemptResult{kind: retryable, err: oserr.Cause(err)}
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := conn.Write(t.wire); err != nil {
		if ctx.Err() != nil {
			return attemptResult{kind: canceled}
		}
		if oserr.Timeout(err) {
			return attemptResult{kind: retryable, err: fmt.Errorf("the bot did not take the message within %s", tokensender.HumanDuration(t.cfg.ackTimeout))}
		}
		return attemptResult{kind: retryable, err: oserr.Cause(err)}
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			return attemptResult{kind: retryable, err: oserr.Cause(err)}
		}
	}

	answer, err := readAnswer(conn)
	if ctx.Err() != nil {
		return attemptResult{kind: canceled}
	}
	return t.judgeAnswer(answer, err)
}

// judgeAnswer classifies what the bot sent back (answer, then readErr,
// nil at a clean end of stream).
func (t *targetRun) judgeAnswer(answer []byte, readErr error) attemptResult {
	if len(answer) == 0 {
		switch {
		case readErr == nil:
			return attemptResult{kind: deliveredNoAck}
		case oserr.Timeout(readErr):
			return attemptResult{kind: retryable, err: fmt.Errorf("no answer within %s", tokensender.HumanDuration(t.cfg.ackTimeout))}
		default:
			return attemptResult{kind: retryable, err: oserr.Cause(readErr)}
		}
	}
	// Whatever came before an error (a reset after "ERROR", a bot that
	// answers and keeps the connection open) is still the bot's answer.
	if string(bytes.TrimSpace(answer)) == "OK" {
		return attemptResult{kind: delivered}
	}
	q := strconv.Quote(t.sanitize(answer))
	return attemptResult{kind: badAnswer, answer: q, err: fmt.Errorf("trading bot answered %s instead of OK", q)}
}

// readAnswer reads up to maxAnswer bytes until EOF. err is nil on EOF.
func readAnswer(r io.Reader) ([]byte, error) {
	buf := make([]byte, 0, maxAnswer)
	for len(buf) < maxAnswer {
		n, err := r.Read(buf[len(buf):maxAnswer])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// sanitize makes the bot's answer safe to log: printable ASCII only, and
// withheld entirely if it repeats any part of the token.
func (t *targetRun) sanitize(answer []byte) string {
	s := strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' {
			return '?'
		}
		return r
	}, string(bytes.TrimSpace(answer)))
	const window = 12
	for _, secret := range []string{t.msg.AccessToken, t.msg.RefreshToken} {
		for i := 0; i+window <= len(answer); i++ {
			if strings.Contains(secret, string(answer[i:i+window])) {
				return "(answer withheld: it repeats part of the token)"
			}
		}
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
