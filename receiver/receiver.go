package receiver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// Defaults for the zero values of Receiver's fields.
const (
	// DefaultAddr is where token-refresh-sender delivers by default, and
	// where the C++ receiver listens.
	DefaultAddr                    = tokensender.DefaultSocketPath
	DefaultMode        os.FileMode = 0o600
	DefaultMaxSize                 = 8192
	DefaultReadTimeout             = 5 * time.Second
)

// maxAnswer is the longest answer sent back; senders read at most 64 bytes.
const maxAnswer = 64

// Receiver accepts tokens pushed by token-refresh-sender. Set the fields, then
// call Listen and Serve (or ListenAndServe). Do not change the fields or copy
// the Receiver after Listen.
type Receiver struct {
	// Addr is a Unix socket path, or "tcp://127.0.0.1:PORT" (loopback only:
	// 127.0.0.0/8, [::1] or localhost; port 0 picks a free port, see
	// BoundAddr). Empty means DefaultAddr, /tmp/bigbrother_token.sock.
	Addr string
	// Mode is the socket file's permission bits; default 0600 (only this
	// user's processes can push tokens).
	Mode os.FileMode
	// MaxSize is the longest message accepted, in bytes; default 8192.
	MaxSize int
	// ReadTimeout bounds reading one message and writing the answer;
	// default 5s.
	ReadTimeout time.Duration
	// OnToken is called with each valid token, before the sender gets "OK".
	// Calls never overlap and come in the order Latest changes. Return
	// quickly: the sender waits for the answer only a few seconds.
	OnToken func(Token)
	// OnReject is called for each message the sender got an "ERROR: ..."
	// answer for: not a valid token message (ErrInvalidMessage), expired
	// (ErrExpired), too long (ErrTooLarge), or not ended within
	// ReadTimeout (ErrIncomplete); test with errors.Is. These are the
	// sender's mistakes. When OnReject is nil they go to OnError.
	OnReject func(error)
	// OnError is called for this side's trouble: a connection that failed
	// while reading, and accept errors (which wrap ErrAccept; Serve
	// retries the transient ones and returns the others). Errors never
	// contain token text. Calls to OnToken, OnReject and OnError never
	// overlap.
	OnError func(error)
	// Now is the clock used to reject expired tokens; default time.Now.
	Now func() time.Time

	mu       sync.Mutex
	ln       net.Listener
	bound    string      // BoundAddr
	sockPath string      // socket file this Receiver created, "" for TCP
	sockInfo os.FileInfo // that file, to remove only our own
	serving  bool
	latest   Token
	haveTok  bool
	seq      uint64        // tokens accepted so far
	waited   uint64        // seq of the token Wait returned last
	arrived  chan struct{} // closed (and replaced) when a token arrives

	cbMu sync.Mutex // serialises OnToken and OnError
}

// Listen binds Addr. When it returns nil the sender can connect; messages
// wait in the backlog until Serve runs. A leftover socket file nobody listens
// on is replaced; a socket another process listens on, or any other kind of
// file at the path, is an error.
func (r *Receiver) Listen() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		return fmt.Errorf("listen on %s: already listening", r.bound)
	}
	network, addr, err := parseAddr(r.addr())
	if err != nil {
		return err
	}
	if network == "tcp" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", r.addr(), err)
		}
		if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			ln.Close()
			return fmt.Errorf("listen on %s: bound to %s, which is not a loopback address; use tcp://127.0.0.1:PORT", r.addr(), ln.Addr())
		}
		r.ln, r.bound, r.sockPath, r.sockInfo = ln, "tcp://"+ln.Addr().String(), "", nil
		return nil
	}

	if err := removeStale(addr); err != nil {
		return err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	ln.SetUnlinkOnClose(false) // we remove it ourselves, only if it is still ours
	mode := r.Mode.Perm()
	if r.Mode == 0 {
		mode = DefaultMode
	}
	info, err := os.Lstat(addr)
	if err == nil {
		err = os.Chmod(addr, mode)
	}
	if err != nil {
		ln.Close()
		os.Remove(addr)
		return fmt.Errorf("listen on %s: set socket mode %#o: %w", addr, mode, err)
	}
	r.ln, r.bound, r.sockPath, r.sockInfo = ln, addr, addr, info
	return nil
}

// addr is Addr, or DefaultAddr when Addr is empty.
func (r *Receiver) addr() string { return cmp.Or(r.Addr, DefaultAddr) }

// removeStale clears the way for a new socket at path, or says why not.
func removeStale(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	if info.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; refusing to remove it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("socket %s is in use by another process", path)
	case errors.Is(err, syscall.ECONNREFUSED):
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove stale socket %s: %w", path, err)
		}
		return nil
	case errors.Is(err, syscall.EAGAIN) || errors.Is(err, os.ErrDeadlineExceeded):
		// Someone listens but has a full backlog.
		return fmt.Errorf("socket %s is in use by another process", path)
	default:
		return fmt.Errorf("socket %s exists and cannot be checked (%w); remove it if no process uses it", path, unwrapOp(err))
	}
}

// BoundAddr is the address Listen bound, in Addr's syntax (with the real port
// for tcp://...:0), or "" when not listening.
func (r *Receiver) BoundAddr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln == nil {
		return ""
	}
	return r.bound
}

// ListenAndServe is Listen followed by Serve.
func (r *Receiver) ListenAndServe(ctx context.Context) error {
	if err := r.Listen(); err != nil {
		return err
	}
	return r.Serve(ctx)
}

// Serve accepts connections until ctx is cancelled or Close is called, then
// closes the listener, waits for connections in progress, removes the socket
// file it created and returns nil. It returns an error if Listen was not
// called or accepting fails for good.
func (r *Receiver) Serve(ctx context.Context) error {
	r.mu.Lock()
	ln := r.ln
	switch {
	case ln == nil:
		r.mu.Unlock()
		return errors.New("receiver: Serve called before Listen")
	case r.serving:
		r.mu.Unlock()
		return fmt.Errorf("receiver: already serving %s", r.bound)
	}
	r.serving = true
	r.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer func() {
		ln.Close()
		wg.Wait()
		r.mu.Lock()
		r.release()
		r.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if !temporary(err) {
				return fmt.Errorf("%w on %s: %w", ErrAccept, r.bound, err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			r.reportError(fmt.Errorf("%w on %s: %w; retrying in %s", ErrAccept, r.bound, err, backoff))
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		backoff = 0
		wg.Go(func() { r.handle(ctx, c) })
	}
}

// Close stops listening. If Serve is running it returns soon after (without
// waiting for Close); otherwise Close removes the socket file itself.
func (r *Receiver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln == nil {
		return nil
	}
	err := r.ln.Close()
	if !r.serving {
		r.release()
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// release forgets the listener and removes the socket file if it is still
// the one Listen created. r.mu must be held; the listener must be closed.
func (r *Receiver) release() {
	if r.sockPath != "" {
		if cur, err := os.Lstat(r.sockPath); err == nil && os.SameFile(cur, r.sockInfo) {
			os.Remove(r.sockPath)
		}
	}
	r.ln, r.sockPath, r.sockInfo, r.serving = nil, "", nil, false
}

// Latest returns the most recently received valid token (the last one to
// arrive, not the one with the latest expires_at), and false if none arrived
// yet.
func (r *Receiver) Latest() (Token, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.latest, r.haveTok
}

// Wait blocks until a token newer than the one Wait last returned has
// arrived, and returns it; the first call returns the first token, at
// once if it has arrived already. When several tokens arrived since the
// last call, Wait returns the latest (a bot needs only the current one).
// It returns ctx's error when ctx ends first. Wait is meant for one
// goroutine, the bot's token loop; OnToken and Latest work alongside it.
func (r *Receiver) Wait(ctx context.Context) (Token, error) {
	for {
		r.mu.Lock()
		if r.seq > r.waited {
			r.waited = r.seq
			t := r.latest
			r.mu.Unlock()
			return t, nil
		}
		if r.arrived == nil {
			r.arrived = make(chan struct{})
		}
		arrived := r.arrived
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return Token{}, fmt.Errorf("wait for a token: %w", ctx.Err())
		case <-arrived:
		}
	}
}

// handle reads one message, answers it and closes the connection.
func (r *Receiver) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	timeout := r.ReadTimeout
	if timeout <= 0 {
		timeout = DefaultReadTimeout
	}
	maxSize := r.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	c.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	data, err := io.ReadAll(io.LimitReader(c, int64(maxSize)+1))
	if ctx.Err() != nil {
		return // shutting down: not the sender's fault
	}
	var answer string
	switch {
	case err != nil && isTimeout(err):
		answer = "ERROR: no end of message within " + timeout.String()
		r.reportReject(fmt.Errorf("receive token: %w: no end of message within %s: the sender must close its write side after the message", ErrIncomplete, timeout))
	case err != nil:
		answer = "ERROR: read failed"
		r.reportError(fmt.Errorf("receive token: read: %w", unwrapOp(err)))
	case len(data) > maxSize:
		answer = "ERROR: message larger than " + strconv.Itoa(maxSize) + " bytes"
		r.reportReject(fmt.Errorf("receive token: %w: more than %d bytes (Receiver.MaxSize)", ErrTooLarge, maxSize))
	default:
		tok, err := ParseMessage(data, r.now())
		if err != nil {
			var rej *rejectError
			answer = "ERROR"
			if errors.As(err, &rej) {
				answer = "ERROR: " + rej.answer
			}
			r.reportReject(fmt.Errorf("receive token: %w", err))
		} else {
			r.accept(tok)
			answer = "OK"
		}
	}
	answer = answer[:min(len(answer), maxAnswer)]
	c.SetWriteDeadline(time.Now().Add(timeout))
	c.Write([]byte(answer))
}

// accept records a valid token and hands it to OnToken.
func (r *Receiver) accept(t Token) {
	r.cbMu.Lock()
	defer r.cbMu.Unlock()
	r.mu.Lock()
	r.latest, r.haveTok = t, true
	r.seq++
	if r.arrived != nil {
		close(r.arrived)
		r.arrived = nil
	}
	r.mu.Unlock()
	if r.OnToken != nil {
		r.OnToken(t)
	}
}

// reportReject reports a message refused for the sender's fault.
func (r *Receiver) reportReject(err error) {
	if r.OnReject == nil {
		r.reportError(err)
		return
	}
	r.cbMu.Lock()
	defer r.cbMu.Unlock()
	r.OnReject(err)
}

func (r *Receiver) reportError(err error) {
	if r.OnError == nil {
		return
	}
	r.cbMu.Lock()
	defer r.cbMu.Unlock()
	r.OnError(err)
}

func (r *Receiver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// parseAddr checks Addr: a Unix socket path, or tcp://HOST:PORT on loopback.
func parseAddr(s string) (network, addr string, err error) {
	bad := func(format string, args ...any) (string, string, error) {
		return "", "", fmt.Errorf("receiver address %q: %s", s, fmt.Sprintf(format, args...))
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		switch {
		case len(s) > 107:
			return bad("Unix socket paths are limited to 107 bytes, this one has %d; use a shorter path", len(s))
		case strings.IndexByte(s, 0) >= 0:
			return bad("a socket path cannot contain a NUL byte")
		case strings.HasPrefix(s, "@"):
			return bad("abstract Unix sockets (@name) are not supported; use a filesystem path")
		}
		return "unix", s, nil
	}
	if scheme != "tcp" {
		return bad("unsupported scheme %q; use a Unix socket path or tcp://127.0.0.1:PORT", scheme)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil || strings.ContainsAny(rest, "/?#@") {
		return bad("expected tcp://HOST:PORT, for example tcp://127.0.0.1:9999")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port[0] == '+' {
		return bad("port %q must be a number from 0 to 65535", port)
	} else {
		port = strconv.FormatUint(n, 10)
	}
	if !strings.EqualFold(host, "localhost") {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.IsLoopback() || ip.Zone() != "" {
			return bad("only loopback addresses are allowed (127.0.0.1, [::1] or localhost): tokens must not leave this machine")
		}
	}
	return "tcp", net.JoinHostPort(host, port), nil
}

func temporary(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.EAGAIN, syscall.EINTR, syscall.EPROTO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// unwrapOp is a socket error's cause alone ("connection reset by peer"),
// without net.OpError's "read unix a->b:" and the system call's name.
func unwrapOp(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}
