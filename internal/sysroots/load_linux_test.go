//go:build linux && !android

package sysroots

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mustCA returns a self-signed CA certificate named name, PEM-encoded.
func mustCA(tb testing.TB, name string) (*x509.Certificate, []byte) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Unix(1700000000, 0),
		NotAfter:              time.Unix(1900000000, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func mustWrite(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// fixture lays out a Debian-like system: a bundle of cas[:n], and a
// directory with the bundle itself, one file per bundled CA, a hash link
// to one of them, a subdirectory, and extra files given by the caller.
func fixture(tb testing.TB, pems [][]byte, n int, extra map[string][]byte) source {
	tb.Helper()
	root := tb.TempDir()
	dir := filepath.Join(root, "certs")
	if err := os.MkdirAll(filepath.Join(dir, "java"), 0o755); err != nil {
		tb.Fatal(err)
	}
	var bundle []byte
	for _, p := range pems[:n] {
		bundle = append(bundle, p...)
	}
	mustWrite(tb, filepath.Join(dir, "ca-certificates.crt"), bundle)
	for i, p := range pems[:n] {
		mustWrite(tb, filepath.Join(dir, "ca"+string(rune('a'+i))+".pem"), p)
	}
	if err := os.Symlink("caa.pem", filepath.Join(dir, "0123abcd.0")); err != nil {
		tb.Fatal(err)
	}
	for name, data := range extra {
		mustWrite(tb, filepath.Join(dir, name), data)
	}
	return source{
		bundles: []string{filepath.Join(root, "missing.crt"), filepath.Join(dir, "ca-certificates.crt")},
		dirs:    []string{filepath.Join(root, "missing"), dir},
	}
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func TestLoad_sameTrustAsCryptoX509(t *testing.T) {
	var certs []*x509.Certificate
	var pems [][]byte
	for _, name := range []string{"bundled A", "bundled B", "bundled C", "only in the directory"} {
		c, p := mustCA(t, name)
		certs, pems = append(certs, c), append(pems, p)
	}
	cases := []struct {
		name  string
		extra map[string][]byte
		want  *x509.CertPool
	}{
		{"directory repeats the bundle", nil, poolOf(certs[:3]...)},
		{"a certificate only in the directory counts", map[string][]byte{"local.pem": pems[3]},
			poolOf(certs...)},
		{"a file holding a bundled and a new certificate counts",
			map[string][]byte{"two.pem": append(append([]byte{}, pems[1]...), pems[3]...)}, poolOf(certs...)},
		{"a bundled certificate with other text around it", map[string][]byte{"note.pem": append([]byte("# note\n"), pems[2]...)},
			poolOf(certs[:3]...)},
		{"files that are not certificates add nothing", map[string][]byte{"README": []byte("hello\n"), "empty": nil},
			poolOf(certs[:3]...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := load(fixture(t, pems, 3, tc.extra))
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) {
				t.Error("the pool does not hold exactly the expected certificates")
			}
		})
	}
}

func TestLoad_noBundle(t *testing.T) {
	c, p := mustCA(t, "directory only")
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "local.pem"), p)
	got, err := load(source{bundles: []string{filepath.Join(dir, "missing.crt")}, dirs: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(poolOf(c)) {
		t.Error("the directory's certificate is missing when there is no bundle")
	}
}

func TestLoad_nothingFound(t *testing.T) {
	dir := t.TempDir()
	got, err := load(source{bundles: []string{filepath.Join(dir, "missing.crt")}, dirs: []string{filepath.Join(dir, "missing")}})
	if got != nil || err != nil {
		t.Errorf("load = %v, %v; want nil, nil (crypto/x509 decides)", got, err)
	}
	mustWrite(t, filepath.Join(dir, "bundle.crt"), []byte("not a certificate"))
	if err := os.Chmod(dir, 0o000); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if os.Geteuid() == 0 {
		return // root reads anyway
	}
	if _, err := load(source{bundles: []string{filepath.Join(dir, "bundle.crt")}}); err == nil {
		t.Error("an unreadable bundle and no certificate: want the error")
	}
}

// TestLoad_directoryCopiesAreNotParsed: copies of the bundle's
// certificates in the directory cost a read each, not a parse (a parse
// allocates dozens of objects per certificate).
func TestLoad_directoryCopiesAreNotParsed(t *testing.T) {
	var pems [][]byte
	for i := range 8 {
		_, p := mustCA(t, "CA "+strings.Repeat("x", i))
		pems = append(pems, p)
	}
	withCopies := fixture(t, pems, 8, nil)
	bundleOnly := source{bundles: withCopies.bundles}
	allocs := func(s source) float64 {
		return testing.AllocsPerRun(5, func() {
			if _, err := load(s); err != nil {
				t.Fatal(err)
			}
		})
	}
	base, copies := allocs(bundleOnly), allocs(withCopies)
	// 11 directory entries: the bundle, 8 copies, a hash link, java/.
	perEntry := (copies - base) / 11
	t.Logf("%.1f allocations per directory entry", perEntry)
	if perEntry > 25 {
		t.Errorf("%.0f allocations per directory entry (bundle alone %.0f, with copies %.0f): copies are parsed", perEntry, base, copies)
	}
}

func TestLoad_thisSystem(t *testing.T) {
	want, err := x509.SystemCertPool()
	if err != nil {
		t.Skipf("crypto/x509 finds no system roots here: %v", err)
	}
	got := Load()
	if got == nil {
		t.Fatal("Load found no roots where crypto/x509 does")
	}
	if !got.Equal(want) {
		t.Errorf("Load's pool differs from crypto/x509's system pool")
	}
}

// BenchmarkLoad loads this system's roots. For comparison, on Debian 12
// with 145 roots crypto/x509 allocated 3.7 MB in 37,600 allocations for
// the same pool (measured once per process, as it caches it); Load about
// 1.8 MB in 15,500.
func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		if Load() == nil {
			b.Skip("no system roots here")
		}
	}
}

func TestSources_environment(t *testing.T) {
	t.Setenv("SSL_CERT_FILE", "")
	t.Setenv("SSL_CERT_DIR", "")
	s := sources()
	if len(s.bundles) != len(bundles) || s.bundles[0] != bundles[0] || len(s.dirs) != len(directories) || s.dirs[0] != directories[0] {
		t.Errorf("without the environment: %+v, want crypto/x509's places", s)
	}
	t.Setenv("SSL_CERT_FILE", "/x/bundle.pem")
	t.Setenv("SSL_CERT_DIR", "/a:/b")
	s = sources()
	if strings.Join(s.bundles, ",") != "/x/bundle.pem" || strings.Join(s.dirs, ",") != "/a,/b" {
		t.Errorf("with SSL_CERT_FILE and SSL_CERT_DIR: %+v", s)
	}
}

// TestLoad_errors: a missing place is no error; another failure is
// returned when no certificate was found (even root cannot read a
// directory as a file).
func TestLoad_errors(t *testing.T) {
	dir := t.TempDir()
	got, err := load(source{bundles: []string{dir}})
	if got != nil || err == nil {
		t.Errorf("load of a directory as the bundle = %v, %v; want nil and the error", got, err)
	}
	_, p := mustCA(t, "after a failed bundle")
	mustWrite(t, filepath.Join(dir, "ca.pem"), p)
	got, err = load(source{bundles: []string{dir, filepath.Join(dir, "ca.pem")}})
	if got == nil || err != nil {
		t.Errorf("a failed place, then a good bundle: %v, %v; want the pool", got, err)
	}
}

func TestSameDirSymlink(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "ca.pem"), []byte("x"))
	for name, target := range map[string]string{"hash.0": "ca.pem", "elsewhere.pem": "/usr/share/ca-certificates/ca.crt"} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if got, want := sameDirSymlink(dir, e), e.Name() == "hash.0"; got != want {
			t.Errorf("sameDirSymlink(%s) = %v, want %v", e.Name(), got, want)
		}
	}
}

// A directory file that is one of the bundle's blocks byte for byte is
// recognised by its text alone (no decoding); anything else needs the DER
// comparison.
func TestBundleIndex_textOfEachBlock(t *testing.T) {
	_, a := mustCA(t, "A")
	_, b := mustCA(t, "B")
	_, c := mustCA(t, "C")
	// Junk, a broken block and a non-certificate block around them: the
	// text of each decoded block starts at its own BEGIN line.
	bundle := bytes.Join([][]byte{[]byte("# Mozilla roots\n"), a, []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n"), b,
		pem.EncodeToMemory(&pem.Block{Type: "TRUSTED CERTIFICATE", Bytes: []byte{1, 2, 3}})}, nil)
	idx := indexBundle(bundle)
	if len(idx.der) != 2 || len(idx.text) != 3 {
		t.Fatalf("indexed %d certificates and %d blocks, want 2 and 3", len(idx.der), len(idx.text))
	}
	byText := bundleIndex{text: idx.text} // no DER: only the text can match
	for _, tc := range []struct {
		name string
		file []byte
		want bool
	}{
		{"a copy of the first block", a, true},
		{"a copy of a block after a broken one", b, true},
		{"a copy with other line ends around it", append(append([]byte("\n\n"), b...), "\r\n"...), true},
		{"a copy of the non-certificate block", pem.EncodeToMemory(&pem.Block{Type: "TRUSTED CERTIFICATE", Bytes: []byte{1, 2, 3}}), true},
		{"a bundled certificate with a comment", append([]byte("# note\n"), a...), false},
		{"a certificate not in the bundle", c, false},
	} {
		if got := byText.holds(tc.file); got != tc.want {
			t.Errorf("%s: held by text %v, want %v", tc.name, got, tc.want)
		}
	}
	if !idx.holds(append([]byte("# note\n"), a...)) || idx.holds(c) {
		t.Error("by DER: a bundled certificate with a comment is held, one not in the bundle is not")
	}
}

// readInto reads whole files of any size into one reused buffer.
func TestReadInto(t *testing.T) {
	dir := t.TempDir()
	var buf []byte
	for _, size := range []int{0, 1, 700, 5000, 3} {
		data := bytes.Repeat([]byte{'x'}, size)
		path := filepath.Join(dir, "f")
		mustWrite(t, path, data)
		var err error
		if buf, err = readInto(buf, path); err != nil || !bytes.Equal(buf, data) {
			t.Fatalf("size %d: read %d bytes, err %v", size, len(buf), err)
		}
	}
	// One allocation, of the file's size and one byte to see io.EOF; a
	// smaller file later reuses it.
	big := filepath.Join(dir, "big")
	mustWrite(t, big, bytes.Repeat([]byte{'y'}, 5000))
	first, err := readInto(nil, big)
	if err != nil || len(first) != 5000 || cap(first) != 5001 {
		t.Fatalf("5000-byte file into no buffer: len %d cap %d, err %v; want 5000, 5001", len(first), cap(first), err)
	}
	mustWrite(t, filepath.Join(dir, "small"), []byte("abc"))
	if again, err := readInto(first, filepath.Join(dir, "small")); err != nil || string(again) != "abc" || &again[:1][0] != &first[:1][0] {
		t.Errorf("a smaller file did not reuse the buffer (err %v)", err)
	}
	if again, err := readInto(first, big); err != nil || len(again) != 5000 || &again[:1][0] != &first[:1][0] {
		t.Errorf("the same file again did not reuse the buffer (err %v)", err)
	}
	// A file longer than its stat size (procfs says 0) is read whole.
	want, err := os.ReadFile("/proc/version")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readInto(nil, "/proc/version"); err != nil || !bytes.Equal(got, want) {
		t.Errorf("/proc/version: read %q, err %v; want %q", got, err, want)
	}
	if _, err := readInto(buf, dir); err == nil {
		t.Error("reading a directory: want an error")
	}
	if got, err := readInto(buf, filepath.Join(dir, "missing")); err == nil || len(got) != 0 {
		t.Errorf("missing file: %d bytes, err %v; want none and an error", len(got), err)
	}
}

// The two stages: the bundle's pool alone, then a new pool with the
// directories' certificates added; the bundle's pool is left as it was.
func TestLoadBundle_thenDirectories(t *testing.T) {
	var certs []*x509.Certificate
	var pems [][]byte
	for _, name := range []string{"bundled A", "bundled B", "only in the directory"} {
		c, p := mustCA(t, name)
		certs, pems = append(certs, c), append(pems, p)
	}
	src := fixture(t, pems, 2, map[string][]byte{"local.pem": pems[2]})
	b := loadBundle(src)
	if !b.bundleOnly().Equal(poolOf(certs[:2]...)) {
		t.Fatal("the bundle stage does not hold exactly the bundle's certificates")
	}
	all, err := b.withDirectories(src)
	if err != nil || !all.Equal(poolOf(certs...)) {
		t.Fatalf("bundle and directories: err %v, or not exactly every certificate", err)
	}
	if !b.bundleOnly().Equal(poolOf(certs[:2]...)) {
		t.Error("adding the directories changed the bundle's pool")
	}
	want, err := load(src)
	if err != nil || !all.Equal(want) {
		t.Error("the two stages together differ from load")
	}

	// No bundle: nothing for the first stage; the directories alone.
	noBundle := source{bundles: []string{filepath.Join(t.TempDir(), "missing.crt")}, dirs: src.dirs}
	b = loadBundle(noBundle)
	if b.bundleOnly() != nil {
		t.Error("no bundle: want no first-stage pool")
	}
	if all, err := b.withDirectories(noBundle); err != nil || !all.Equal(poolOf(certs...)) {
		t.Errorf("no bundle: the directories' pool is wrong (err %v)", err)
	}
	// A bundle without a certificate gives no first stage either.
	empty := filepath.Join(t.TempDir(), "empty.crt")
	mustWrite(t, empty, []byte("# nothing\n"))
	if loadBundle(source{bundles: []string{empty}}).bundleOnly() != nil {
		t.Error("a bundle without certificates: want no first-stage pool")
	}
}

func TestStaged_thisSystem(t *testing.T) {
	want, err := x509.SystemCertPool()
	if err != nil {
		t.Skipf("crypto/x509 finds no system roots here: %v", err)
	}
	bundle, all := Staged()
	if got := all(); got == nil || !got.Equal(want) {
		t.Error("Staged's full pool differs from crypto/x509's system pool")
	}
	if first, again := all(), all(); first != again {
		t.Error("the full pool is built more than once")
	}
	if bundle == nil {
		t.Skip("no CA bundle on this system")
	}
}
