package tokenfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// ErrInProgress is matched (errors.Is) by the error Load returns when the
// file kept changing and never held a complete token file while it was
// re-read: another program is writing it in place. It passes on its own.
var ErrInProgress = errors.New("token file is being written")

// tornRetries are the pauses between re-reads of a file that does not
// parse, about 100 ms in all: another program (schwab-py) may be writing it
// in place, so an empty or cut-off file is normal for a moment.
var tornRetries = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 40 * time.Millisecond}

// settleTime: a file that still does not parse after tornRetries but was
// modified less than this long ago is re-read every settlePause until it
// is that old (its writer may have been descheduled mid-write on a busy
// machine); only a file that stayed broken and untouched that long is
// malformed. At most settleReads more reads.
const (
	settleTime  = time.Second
	settlePause = 100 * time.Millisecond
	settleReads = 12
)

// Store is the token file as the refresh loop and the commands use it.
// Set Path (and the optional fields) and use its methods; a Store holds no
// state between calls, so several goroutines may share one.
type Store struct {
	// Path is the token file.
	Path string
	// Mode is the mode every write gives the file: 0600 (the default when
	// zero) or 0640 (--token-file-mode). Anything readable or writable by
	// others, or writable by the group, is refused (see CheckMode).
	Mode os.FileMode
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// LockWait bounds every wait for the lock; 0 means DefaultLockWait.
	LockWait time.Duration
	// Logger hears that a lock wait begins (INFO, naming the holder),
	// housekeeping (Instance) and failures to release the lock; nil
	// discards.
	Logger *slog.Logger

	// Test seams; nil means the real thing.
	sleep   func(ctx context.Context, d time.Duration) error
	holders func(dev, ino uint64) []int
	ops     *writeOps
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Store) locker() locker {
	l := defaultLocker()
	l.wait, l.now, l.log = s.LockWait, s.now, s.logger()
	if s.sleep != nil {
		l.sleep = s.sleep
	}
	if s.holders != nil {
		l.holders = s.holders
	}
	return l
}

// Load reads and validates the token file. A file that does not parse is
// re-read a few times over about 100 ms (another program may be writing it
// in place); only a file that stays bad is an error. The errors are those
// of the package-level Load.
func (s *Store) Load(ctx context.Context) (tokensender.Token, error) {
	d, err := s.loadDoc(ctx)
	if err != nil {
		return tokensender.Token{}, err
	}
	return d.Token(), nil
}

func (s *Store) loadDoc(ctx context.Context) (*Document, error) {
	sleep := s.sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	return load(ctx, s.Path, sleep, s.now)
}

// Update runs fn on the file's current token while holding the lock
// (bounded wait, see Lock) and saves the token fn returns: Apply at the
// store's now, then an atomic write with Mode. If the file cannot be
// loaded, fn is not called and the load error is returned (it matches
// ErrNotFound, ErrInvalid or ErrInProgress when it is about content). If fn
// fails, nothing is written and Update returns the zero Token and fn's
// error unchanged. If fn succeeded but the write failed, Update returns
// fn's token and the write error: refreshed, but not saved. That includes
// a file that another program gave a new refresh token while fn ran
// (ErrNewLogin): it is not overwritten.
func (s *Store) Update(ctx context.Context, fn func(current tokensender.Token) (tokensender.Token, error)) (tokensender.Token, error) {
	var tok tokensender.Token
	called := false
	err := s.UpdateDocument(ctx, func(d *Document) error {
		t, err := fn(d.Token())
		if err != nil {
			return err
		}
		called, tok = true, t
		d.Apply(t, s.now())
		return nil
	})
	if !called {
		return tokensender.Token{}, err
	}
	return tok, err
}

// UpdateDocument is Update for callers that edit the document itself: fn
// runs under the lock on the loaded document, and what it leaves is
// written if it returns nil. fn's error comes back unchanged.
//
// Programs that write the file without the lock (schwab-py) may write it
// while fn runs, which can take as long as a request to Schwab. Just before
// writing, the file is read again: when it now holds another refresh token
// (a login made meanwhile), nothing is written and the error matches
// ErrNewLogin. Their other writes (the same refresh token) are replaced.
func (s *Store) UpdateDocument(ctx context.Context, fn func(d *Document) error) (err error) {
	unlock, err := s.locker().lockFile(ctx, s.Path)
	if err != nil {
		return err
	}
	defer s.unlock(unlock)
	d, err := s.loadDoc(ctx)
	if err != nil {
		return err
	}
	loaded := d.Token().RefreshToken
	if err := fn(d); err != nil {
		return err
	}
	if now, err := s.loadDoc(ctx); err == nil && now.Token().RefreshToken != loaded {
		return &fileError{
			msg: fmt.Sprintf("token file %s: another program wrote a new refresh token into it meanwhile (a new login); "+
				"left as it is, so that login is kept", s.Path),
			kind: ErrNewLogin,
		}
	}
	return s.write(d)
}

// SaveLogin saves the tokens of a new login under the lock. The file's
// other keys are kept when it holds a valid token file; a missing file is
// created, and a malformed one is replaced (with a WARNING saying so). A
// file that cannot be read at all (permissions, a socket at the path) is
// left alone and its error returned. refresh_token_issued_at is
// tok.RefreshTokenIssuedAt, or now when that is zero.
func (s *Store) SaveLogin(ctx context.Context, tok tokensender.Token) error {
	unlock, err := s.locker().lockFile(ctx, s.Path)
	if err != nil {
		return err
	}
	defer s.unlock(unlock)
	now := s.now()
	if tok.RefreshTokenIssuedAt.IsZero() {
		tok.RefreshTokenIssuedAt = now
	}
	d, err := s.loadDoc(ctx)
	switch {
	case err == nil:
		d.Apply(tok, now)
	case errors.Is(err, ErrNotFound):
		d = New(tok, now)
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrInProgress):
		s.logger().Warn("The old token file was unusable, so the new tokens replace it: " + err.Error())
		d = New(tok, now)
	default:
		return err
	}
	return s.write(d)
}

func (s *Store) unlock(unlock func() error) {
	if err := unlock(); err != nil {
		s.logger().Warn(err.Error())
	}
}

// write replaces the file with d at s.Mode.
func (s *Store) write(d *Document) error {
	ops := defaultWriteOps()
	if s.ops != nil {
		ops = *s.ops
	}
	return writeFile(s.Path, d.Marshal(), s.Mode, ops)
}

// load reads and parses path, re-reading a file that does not parse after
// each of tornRetries. A file that stays bad gives Parse's error when it
// was never rewritten (same content, inode and modification time), and an
// ErrInProgress error when it was (someone is writing it: no login advice
// for that). A file modified less than settleTime before now is given until
// then to become whole.
func load(ctx context.Context, path string, sleep func(context.Context, time.Duration) error, now func() time.Time) (*Document, error) {
	data, fi, err := readFile(path)
	if err != nil {
		return nil, err
	}
	d, perr := Parse(path, data)
	changed, stopped := false, false
	for _, pause := range tornRetries {
		if perr == nil {
			return d, nil
		}
		if sleep(ctx, pause) != nil {
			stopped = true
			break
		}
		next, nextFi, err := readFile(path)
		if err != nil {
			return nil, err
		}
		// A writer that keeps rewriting the same content can leave the
		// same cut-off bytes at every read: the file's times tell.
		changed = changed || !bytes.Equal(next, data) || rewritten(fi, nextFi)
		data, fi = next, nextFi
		d, perr = Parse(path, data)
	}
	for i := 0; perr != nil && !changed && !stopped && i < settleReads && now().Sub(fi.ModTime()) < settleTime; i++ {
		if sleep(ctx, settlePause) != nil {
			break
		}
		next, nextFi, err := readFile(path)
		if err != nil {
			return nil, err
		}
		changed = !bytes.Equal(next, data) || rewritten(fi, nextFi)
		data, fi = next, nextFi
		d, perr = Parse(path, data)
	}
	if perr == nil {
		return d, nil
	}
	if changed {
		return nil, &fileError{
			msg: fmt.Sprintf("token file %s: another program kept rewriting it and it never held a complete token file while it was re-read; this passes on its own, try again in a moment",
				path),
			kind: ErrInProgress,
			err:  perr,
		}
	}
	return d, perr
}
