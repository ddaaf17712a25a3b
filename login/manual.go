package login

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// maxPasteLine bounds one pasted line; a redirect address is well under 1 KiB.
const maxPasteLine = 64 << 10

// line is one line read from the terminal, or the reason reading stopped.
type line struct {
	text string
	err  error // io.EOF or a read error; text is empty then
}

// runManual prints the URL and reads the redirect address from opts.In
// until one is usable, the user denied, the input ends, the timeout passes
// or ctx is done. A paste that cannot be used is explained and asked for
// again.
func (f *flow) runManual(ctx context.Context) (*Result, error) {
	f.announce()
	want := f.callback.Scheme + "://" + f.callback.Host
	f.log.Info(fmt.Sprintf("After you click Allow, the browser is sent to %s/?code=... and shows an error such as \"This site can't be reached\": that is expected.", want))
	f.log.Info("Copy the whole address from the browser's address bar, paste it here and press Enter (within 30 seconds: the code expires)")
	if f.opts.Ready != nil {
		f.opts.Ready(f.authURL)
	}

	stop := make(chan struct{})
	defer close(stop)
	lines := make(chan line)
	go func() {
		// Blocked in Read, this goroutine outlives Run if the input never
		// ends; a terminal read cannot be interrupted.
		sc := bufio.NewScanner(f.opts.In)
		sc.Buffer(make([]byte, 0, 4096), maxPasteLine)
		for sc.Scan() {
			select {
			case lines <- line{text: sc.Text()}:
			case <-stop:
				return
			}
		}
		err := sc.Err()
		if err == nil {
			err = errEOF
		}
		select {
		case lines <- line{err: err}:
		case <-stop:
		}
	}()

	timer := time.NewTimer(f.opts.Timeout)
	defer timer.Stop()
	var last error // the last unusable paste
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("login cancelled while waiting for the pasted address: %w", context.Cause(ctx))
		case <-timer.C:
			return nil, newError(ErrTimeout, nil, "no redirect address pasted within %v; run login again", f.opts.Timeout)
		case l := <-lines:
			if l.err != nil {
				msg := "the input ended before a redirect address was pasted; run login again and paste the address the browser was sent to"
				if !errors.Is(l.err, errEOF) {
					msg = fmt.Sprintf("cannot read the pasted address (%v); run login again", l.err)
				}
				if last != nil {
					msg += " (last paste: " + last.Error() + ")"
				}
				return nil, newError(nil, l.err, "%s", msg)
			}
			if strings.TrimSpace(l.text) == "" {
				continue
			}
			code, err := ParseRedirect(f.callback, l.text, f.state)
			if errors.Is(err, ErrDenied) {
				return nil, err
			}
			if err != nil {
				last = err
				f.log.Error(err.Error())
				f.log.Info("Paste the address again and press Enter")
				continue
			}
			return f.complete(ctx, code)
		}
	}
}

var errEOF = errors.New("end of input")
