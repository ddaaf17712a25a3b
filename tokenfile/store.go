package tokenfile

import (
	"context"
	"fmt"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// Store is the token file as the refresh loop sees it: lock, load, save.
// Save applies the new token to the document most recently loaded, so every
// key the program does not know survives; call Load under the lock first.
// A Store is used by one goroutine at a time.
type Store struct {
	Path string
	doc  *Document
}

// Lock takes the cross-process lock on the token file.
func (s *Store) Lock(ctx context.Context) (func() error, error) {
	return Lock(ctx, s.Path)
}

// Load reads and validates the token file and remembers it for Save.
func (s *Store) Load() (tokensender.Token, error) {
	d, err := Load(s.Path)
	if err != nil {
		return tokensender.Token{}, err
	}
	s.doc = d
	return d.Token(), nil
}

// Save records tok as refreshed at now and replaces the file atomically.
func (s *Store) Save(tok tokensender.Token, now time.Time) error {
	if s.doc == nil {
		return fmt.Errorf("token file %s: save called before a successful load", s.Path)
	}
	s.doc.Apply(tok, now)
	return Write(s.Path, s.doc)
}
