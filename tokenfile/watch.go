package tokenfile

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchSettle is how long the watcher waits after the last event before
// reporting a change, so that a burst (create temp, write, rename) is one
// change.
const watchSettle = 200 * time.Millisecond

// Watch reports on the returned channel whenever the token file at path
// may have been replaced or rewritten, by anyone: this program, a login,
// schwab-py or a person with an editor. It watches the file's directory,
// not the file, because the file is replaced by rename. Reports are
// coalesced; the receiver should Load the file and compare. The channel is
// closed when ctx is done. A nil logger discards watcher errors.
func Watch(ctx context.Context, path string, logger *slog.Logger) (<-chan struct{}, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch token file %s: %w", path, err)
	}
	target, err := filepath.Abs(resolve(path))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("watch token file %s: %w", path, err)
	}
	dir := filepath.Dir(target)
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch token file %s: watch directory %s: %w", path, dir, err)
	}
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		defer w.Close()
		var settle <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == target && ev.Op&(fsnotify.Create|fsnotify.Write|fsnotify.Rename) != 0 {
					settle = time.After(watchSettle)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				logger.Warn(fmt.Sprintf("Watching %s for a new login: %v", path, err))
			case <-settle:
				settle = nil
				select {
				case out <- struct{}{}:
				default: // a report is already pending
				}
			}
		}
	}()
	return out, nil
}
