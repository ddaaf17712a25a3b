package tokenfile

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/schwabtools/token-refresh-sender/internal/oserr"
)

// watchSettle is how long the watcher waits after the last event before
// reporting a change, so that a burst (create temp, write, rename) is one
// change.
const watchSettle = 200 * time.Millisecond

// watchMaxDelay bounds the wait after the first event of a burst: a
// program that writes the file more often than watchSettle still has its
// changes reported this soon, so a new login is noticed within a second.
const watchMaxDelay = 250 * time.Millisecond

// Watch reports on the returned channel whenever the token file at path
// may have been replaced or rewritten, by anyone: this program, a login,
// schwab-py or a person with an editor. It watches the file's directory,
// not the file, because the file is replaced by rename; other files in the
// directory are ignored. Reports are coalesced: one comes watchSettle after
// the last event of a burst, and never later than watchMaxDelay after its
// first. The receiver should Load the file and compare. The channel is
// closed when ctx is done. A nil logger discards watcher errors.
func Watch(ctx context.Context, path string, logger *slog.Logger) (<-chan struct{}, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	events, err := watchFile(ctx, path, logger)
	if err != nil {
		return nil, err
	}
	out := make(chan struct{}, 1)
	go coalesce(events, out)
	return out, nil
}

// watchFile sends the name of every event that concerns the token file at
// path (created, written or renamed onto), unsettled, until ctx is done;
// then it closes the channel.
func watchFile(ctx context.Context, path string, logger *slog.Logger) (<-chan string, error) {
	target, err := filepath.Abs(resolve(path))
	if err != nil {
		return nil, fmt.Errorf("watch token file %s: %w", path, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch token file %s: %w", path, err)
	}
	dir := filepath.Dir(target)
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch token file %s: watch directory %s: %s", path, dir, oserr.Reason(err))
	}
	out := make(chan string)
	go func() {
		defer close(out)
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-w.Events:
				if filepath.Clean(ev.Name) != target || !ev.Has(fsnotify.Create|fsnotify.Write|fsnotify.Rename) {
					continue
				}
				select {
				case out <- ev.Name:
				case <-ctx.Done():
					return
				}
			case err := <-w.Errors:
				logger.Warn(fmt.Sprintf("Watching %s for a new login: %v", path, err))
			}
		}
	}()
	return out, nil
}

// coalesce turns events into reports on out (buffer 1: a pending report
// absorbs later ones): watchSettle after the last event, at most
// watchMaxDelay after the first. It closes out when events closes.
func coalesce(events <-chan string, out chan<- struct{}) {
	defer close(out)
	var settle, limit *time.Timer
	var fire <-chan time.Time
	var deadline <-chan time.Time
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
			if settle == nil {
				settle, limit = time.NewTimer(watchSettle), time.NewTimer(watchMaxDelay)
				fire, deadline = settle.C, limit.C
			} else {
				settle.Reset(watchSettle)
			}
			continue
		case <-fire:
		case <-deadline:
		}
		settle.Stop()
		limit.Stop()
		settle, fire, deadline = nil, nil, nil
		select {
		case out <- struct{}{}:
		default: // a report is already pending
		}
	}
}
