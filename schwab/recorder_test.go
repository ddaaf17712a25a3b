package schwab

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// errReader returns its data, then err.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

func TestRecordingBody(t *testing.T) {
	t.Run("bounded copy", func(t *testing.T) {
		r := &recorder{}
		big := strings.Repeat("x", maxRecorded+4096)
		b := &recordingBody{ReadCloser: io.NopCloser(strings.NewReader(big)), r: r}
		n, err := io.Copy(io.Discard, b)
		if err != nil || n != int64(len(big)) {
			t.Fatalf("read %d, %v", n, err)
		}
		res := r.result()
		if len(res.body) != maxRecorded || res.readErr != nil {
			t.Errorf("recorded %d bytes, readErr %v; want %d, nil", len(res.body), res.readErr, maxRecorded)
		}
	})
	t.Run("read error kept, EOF not", func(t *testing.T) {
		r := &recorder{}
		cut := errors.New("connection reset")
		b := &recordingBody{ReadCloser: io.NopCloser(&errReader{strings.NewReader("abc"), cut}), r: r}
		if _, err := io.ReadAll(b); !errors.Is(err, cut) {
			t.Fatalf("err %v", err)
		}
		if res := r.result(); !errors.Is(res.readErr, cut) || !bytes.Equal(res.body, []byte("abc")) {
			t.Errorf("readErr %v, body %q", res.readErr, res.body)
		}
		r2 := &recorder{}
		b = &recordingBody{ReadCloser: io.NopCloser(strings.NewReader("abc")), r: r2}
		io.ReadAll(b)
		if res := r2.result(); res.readErr != nil {
			t.Errorf("EOF recorded as a read error: %v", res.readErr)
		}
	})
}
