//go:build linux && !android

package sysroots

import (
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
