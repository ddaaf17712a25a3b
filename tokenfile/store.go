package tokenfile

import (
	"context"
	"fmt"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// defaultLockWait bounds Update's wait for the lock when LockWait is 0.
const defaultLockWait = 45 * time.Second

// Store is the token file as the refresh loop sees it (daemon.Store): load,
// and update under the cross-process lock. Every key the program does not
// know survives an update. A Store is used by one goroutine at a time.
type Store struct {
	Path string
	// Now stamps creation_timestamp on each save; nil means time.Now.
	Now func() time.Time
	// LockWait bounds the wait for the lock (0: 45 s).
	LockWait time.Duration
	doc      *Document
}

// Lock takes the cross-process lock on the token file.
func (s *Store) Lock(ctx context.Context) (func() error, error) {
	return Lock(ctx, s.Path)
}

// Load reads and validates the token file and remembers it for Save.
func (s *Store) Load(context.Context) (tokensender.Token, error) {
	d, err := Load(s.Path)
	if err != nil {
		return tokensender.Token{}, err
	}
	s.doc = d
	return d.Token(), nil
}

// Update loads the file under the lock, calls fn with its token and saves
// what fn returns, with refresh_token_issued_at from the token when it is
// known. If fn fails nothing is written and its error is returned
// unchanged; if only the write fails, fn's token is returned with the error.
func (s *Store) Update(ctx context.Context, fn func(tokensender.Token) (tokensender.Token, error)) (tokensender.Token, error) {
	wait := s.LockWait
	if wait == 0 {
		wait = defaultLockWait
	}
	lockCtx, cancel := context.WithTimeout(ctx, wait)
	unlock, err := Lock(lockCtx, s.Path)
	cancel()
	if err != nil {
		return tokensender.Token{}, err
	}
	defer unlock()
	if _, err := s.Load(ctx); err != nil {
		return tokensender.Token{}, err
	}
	tok, err := fn(s.doc.Token())
	if err != nil {
		return tokensender.Token{}, err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	s.doc.Apply(tok, now())
	if !tok.RefreshTokenIssuedAt.IsZero() {
		s.doc.top.set(keyIssued, intJSON(tok.RefreshTokenIssuedAt.Unix()))
	}
	if err := Write(s.Path, s.doc); err != nil {
		return tok, err
	}
	return tok, nil
}

// Save records tok as refreshed at now and replaces the file atomically.
func (s *Store) Save(tok tokensender.Token, now time.Time) error {
	if s.doc == nil {
		return fmt.Errorf("token file %s: save called before a successful load", s.Path)
	}
	s.doc.Apply(tok, now)
	return Write(s.Path, s.doc)
}
