package fakeschwab

import (
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"time"
)

// FaultKind names a kind of injected fault, as counted in Stats.
type FaultKind string

// The fault kinds.
const (
	FaultKindStatus    FaultKind = "status"
	FaultKindHTML403   FaultKind = "html403"
	FaultKindRateLimit FaultKind = "rate_limit"
	FaultKind5xx       FaultKind = "5xx"
	FaultKindReset     FaultKind = "reset"
	FaultKindTruncated FaultKind = "truncated_json"
	FaultKindLatency   FaultKind = "latency"
)

// Bodies of the canned faults.
const (
	BodyAccessDenied = `<html><head><title>Access Denied</title></head><body><h1>Access Denied</h1>You don't have permission to access "http&#58;&#47;&#47;api&#46;schwabapi&#46;com&#47;v1&#47;oauth&#47;token" on this server.<p>Reference&#32;&#35;18&#46;fake</p></body></html>`
	BodyRateLimit    = `{"errors":[{"status":"429","title":"Rate Limit Exceeded"}]}`
	BodyTruncated    = `{"access_token": "I0.xx`
)

// Fault replaces the fake's answer to one token request. Build it with the
// Fault* constructors.
type Fault struct {
	kind        FaultKind
	status      int
	contentType string
	body        string
	header      http.Header
	delay       time.Duration
}

// Kind reports which kind of fault f is.
func (f Fault) Kind() FaultKind { return f.kind }

// FaultStatus answers with the given status, Content-Type, body and extra
// headers.
func FaultStatus(code int, contentType, body string, header http.Header) Fault {
	return Fault{kind: FaultKindStatus, status: code, contentType: contentType, body: body, header: header.Clone()}
}

// FaultHTML403 answers like Schwab's CDN sometimes does: 403 with an HTML
// "Access Denied" page.
func FaultHTML403() Fault {
	return Fault{kind: FaultKindHTML403, status: http.StatusForbidden, contentType: "text/html", body: BodyAccessDenied}
}

// FaultRateLimit answers 429 with Schwab's JSON body and a Retry-After of
// retryAfter (whole seconds, rounded up; none when retryAfter <= 0).
func FaultRateLimit(retryAfter time.Duration) Fault {
	h := http.Header{}
	if retryAfter > 0 {
		secs := (retryAfter + time.Second - 1) / time.Second
		h.Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	return Fault{kind: FaultKindRateLimit, status: http.StatusTooManyRequests, contentType: "application/json", body: BodyRateLimit, header: h}
}

// Fault5xx answers with the given server error status and an empty body.
func Fault5xx(code int) Fault {
	return Fault{kind: FaultKind5xx, status: code}
}

// FaultReset drops the connection without answering: the TCP connection is
// closed with SO_LINGER 0, so the client sees a reset (or EOF).
func FaultReset() Fault { return Fault{kind: FaultKindReset} }

// FaultTruncatedJSON answers 200 with a token body cut off mid-string.
func FaultTruncatedJSON() Fault {
	return Fault{kind: FaultKindTruncated, status: http.StatusOK, contentType: "application/json", body: BodyTruncated}
}

// FaultLatency waits d (real time, cut short if the client goes away) and
// then answers normally.
func FaultLatency(d time.Duration) Fault { return Fault{kind: FaultKindLatency, delay: d} }

// Inject queues f for the next token request. Queued faults are used in
// FIFO order, one per request, before any SetFaultEvery cycle.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// SetFaultEvery makes every n-th refresh_token request answer with the next
// fault of faults, cycling. n <= 0 or no faults turns it off.
func (s *Server) SetFaultEvery(n int, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 || len(faults) == 0 {
		s.every, s.cycle = 0, nil
		return
	}
	s.every, s.cycle, s.cycleAt, s.refreshN = n, append([]Fault(nil), faults...), 0, 0
}

// nextFaultLocked picks the fault for this request, if any.
func (s *Server) nextFaultLocked(grant string) (Fault, bool) {
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		return f, true
	}
	if s.every > 0 && grant == "refresh_token" {
		s.refreshN++
		if s.refreshN%s.every == 0 {
			f := s.cycle[s.cycleAt%len(s.cycle)]
			s.cycleAt++
			return f, true
		}
	}
	return Fault{}, false
}

// apply writes the fault's answer. It reports whether the request should
// then be answered normally (latency).
func (f Fault) apply(w http.ResponseWriter, r *http.Request) (proceed bool) {
	switch f.kind {
	case FaultKindLatency:
		t := time.NewTimer(f.delay)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-r.Context().Done():
			// The client gave up: drop the connection rather than let
			// net/http send an empty 200.
			panic(http.ErrAbortHandler)
		}
	case FaultKindReset:
		reset(w)
		return false
	}
	h := w.Header()
	for k, v := range f.header {
		h[k] = append([]string(nil), v...)
	}
	if f.contentType != "" {
		h.Set("Content-Type", f.contentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(f.body)))
	w.WriteHeader(f.status)
	_, _ = w.Write([]byte(f.body))
	return false
}

// reset closes the client connection abruptly, without a response.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // the server drops the connection
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn() // skip the TLS close_notify
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}
