package metrics

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// exposition is a /metrics body parsed by parseExposition, a strict reader
// of the Prometheus text format as far as this package writes it: HELP and
// TYPE at most once per family and before its samples, every other line a
// sample with a float value, no series twice.
type exposition struct {
	help, typ map[string]string // by family name; help unescaped
	samples   []sample
}

type sample struct {
	name   string // as written: a histogram's x_bucket, x_sum, x_count
	labels map[string]string
	value  float64
}

// scrape fetches /metrics over real HTTP and parses it.
func scrape(tb testing.TB, url string) *exposition {
	tb.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		tb.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /metrics: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		tb.Errorf("GET /metrics: Content-Type %q, want the Prometheus text format 0.0.4", ct)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read /metrics: %v", err)
	}
	return parseExposition(tb, string(body))
}

func parseExposition(tb testing.TB, text string) *exposition {
	tb.Helper()
	e := &exposition{help: map[string]string{}, typ: map[string]string{}}
	if !strings.HasSuffix(text, "\n") {
		tb.Fatalf("exposition does not end in a newline: %q", text[max(0, len(text)-80):])
	}
	seen := map[string]bool{} // series already read
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(format string, args ...any) {
			tb.Helper()
			tb.Fatalf("/metrics line %d %q: %s", i+1, line, fmt.Sprintf(format, args...))
		}
		if kind, ok := strings.CutPrefix(line, "# "); ok {
			kind, rest, _ := strings.Cut(kind, " ")
			if kind != "HELP" && kind != "TYPE" {
				continue // a plain comment
			}
			name, text, _ := strings.Cut(rest, " ")
			meta := e.help
			if kind == "TYPE" {
				meta = e.typ
			}
			if _, dup := meta[name]; dup {
				fail("second %s line for %s", kind, name)
			}
			if len(e.series(name)) > 0 {
				fail("%s line after samples of %s", kind, name)
			}
			if kind == "HELP" {
				text = strings.NewReplacer(`\\`, `\`, `\n`, "\n").Replace(text)
			}
			meta[name] = text
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			fail("%v", err)
		}
		key := s.name + fmt.Sprint(s.labels)
		if seen[key] {
			fail("second sample of the same series")
		}
		seen[key] = true
		e.samples = append(e.samples, s)
	}
	return e
}

// parseSample reads `name{label="value",...} value`.
func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, errors.New("no metric name")
	}
	s.name, line = line[:i], line[i:]
	if rest, ok := strings.CutPrefix(line, "{"); ok {
		for {
			rest = strings.TrimLeft(rest, " ")
			if after, ok := strings.CutPrefix(rest, "}"); ok {
				line = after
				break
			}
			name, after, ok := strings.Cut(rest, `="`)
			if !ok || name == "" {
				return s, errors.New(`label without name="value"`)
			}
			var value strings.Builder
			j := 0
			for ; j < len(after) && after[j] != '"'; j++ {
				if after[j] == '\\' && j+1 < len(after) {
					j++
					if after[j] == 'n' {
						value.WriteByte('\n')
						continue
					}
				}
				value.WriteByte(after[j])
			}
			if j == len(after) {
				return s, errors.New("label value without closing quote")
			}
			if _, dup := s.labels[name]; dup {
				return s, fmt.Errorf("label %s twice", name)
			}
			s.labels[name] = value.String()
			rest = strings.TrimPrefix(after[j+1:], ",")
		}
	}
	if !strings.HasPrefix(line, " ") {
		return s, errors.New("no space before the value")
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(line), 64)
	if err != nil {
		return s, fmt.Errorf("value: %w", err)
	}
	s.value = v
	return s, nil
}

// series returns the samples named name.
func (e *exposition) series(name string) []sample {
	var ss []sample
	for _, s := range e.samples {
		if s.name == name {
			ss = append(ss, s)
		}
	}
	return ss
}

// has reports whether name has a sample or metadata.
func (e *exposition) has(name string) bool {
	_, help := e.help[name]
	_, typ := e.typ[name]
	return help || typ || len(e.series(name)) > 0
}

// value returns the value of the one sample named name with the labels
// given as name, value pairs (other labels it may have are ignored).
func (e *exposition) value(tb testing.TB, name string, labels ...string) float64 {
	tb.Helper()
	var found []sample
	for _, s := range e.series(name) {
		if matches(s, labels) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		tb.Fatalf("%s%v: %d samples in the scrape, want 1", name, labels, len(found))
	}
	return found[0].value
}

func matches(s sample, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		if v, ok := s.labels[labels[i]]; !ok || v != labels[i+1] {
			return false
		}
	}
	return true
}

// labelValues returns the values label takes in name's samples, sorted.
func (e *exposition) labelValues(name, label string) []string {
	var vs []string
	for _, s := range e.series(name) {
		vs = append(vs, s.labels[label])
	}
	slices.Sort(vs)
	return vs
}

func TestParseExposition(t *testing.T) {
	e := parseExposition(t, "# HELP a_total Counts \\\\ things.\\nSecond line.\n# TYPE a_total counter\n"+
		`a_total{result="x",other="q\"\\\n"} 3`+"\n"+"a_total{ result=\"y\" , other=\"\"} 4.5\n# a comment\nb +Inf\n")
	if got := e.help["a_total"]; got != "Counts \\ things.\nSecond line." {
		t.Errorf("help %q", got)
	}
	if e.typ["a_total"] != "counter" || e.value(t, "a_total", "result", "x", "other", "q\"\\\n") != 3 ||
		e.value(t, "a_total", "result", "y") != 4.5 || !e.has("b") || e.has("c") {
		t.Errorf("parsed %+v", e)
	}
	for _, bad := range []string{
		"a 1",                                   // no newline at the end
		"a\n",                                   // no value
		"a x\n",                                 // value not a number
		"{x=\"1\"} 1\n",                         // no name
		"a{x=\"1} 1\n",                          // unterminated
		"a{x} 1\n",                              // no value
		"a{x=\"1\",x=\"2\"} 1\n",                // label twice
		"a{x=\"1\"}1\n",                         // no space
		"a 1\na 2\n",                            // series twice
		"# TYPE a gauge\n# TYPE a gauge\na 1\n", // TYPE twice
		"# HELP a x\n# HELP a y\na 1\n",         // HELP twice
		"a 1\n# TYPE a gauge\n",                 // TYPE after samples
	} {
		ft := &fatalT{T: t}
		func() {
			defer func() { _ = recover() }()
			parseExposition(ft, bad)
		}()
		if !ft.failed {
			t.Errorf("parseExposition(%q) accepted it", bad)
		}
	}
}

// fatalT records Fatalf and stops the parse with a panic.
type fatalT struct {
	*testing.T
	failed bool
}

func (f *fatalT) Fatalf(string, ...any) { f.failed = true; panic("fatal") }
func (f *fatalT) Helper()               {}
