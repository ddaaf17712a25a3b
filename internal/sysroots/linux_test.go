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
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// now is inside every test certificate's validity.
var now = time.Unix(1800000000, 0)

// issuer is a certificate with its key, able to sign others.
type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// pem is c's PEM text.
func (c issuer) pem() []byte { return certPEM(c.cert) }

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// newCert makes a certificate from tmpl signed by parent (self-signed
// when parent is nil).
func newCert(tb testing.TB, tmpl *x509.Certificate, parent *issuer) issuer {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(1)
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Unix(1700000000, 0), time.Unix(1900000000, 0)
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return issuer{cert, key}
}

func newCA(tb testing.TB, name string, parent *issuer) issuer {
	return newCert(tb, &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, parent)
}

// newLeaf is a server certificate for 127.0.0.1 and schwab.test.
func newLeaf(tb testing.TB, parent *issuer, notAfter time.Time) *x509.Certificate {
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "server"}, DNSNames: []string{"schwab.test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if !notAfter.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Unix(1700000000, 0), notAfter
	}
	return newCert(tb, tmpl, parent).cert
}

func mustWrite(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// system lays out a Debian-like system: a bundle, and a directory with the
// bundle itself, one file per bundled root, a hash link to one of them, a
// subdirectory, and the caller's extra files. It counts the directory
// listings verify makes.
type system struct {
	source
	listings int
}

func newSystem(tb testing.TB, bundled [][]byte, extra map[string][]byte) *system {
	tb.Helper()
	root := tb.TempDir()
	dir := filepath.Join(root, "certs")
	if err := os.MkdirAll(filepath.Join(dir, "java"), 0o755); err != nil {
		tb.Fatal(err)
	}
	mustWrite(tb, filepath.Join(dir, "ca-certificates.crt"), bytes.Join(bundled, nil))
	for i, p := range bundled {
		mustWrite(tb, filepath.Join(dir, "ca"+string(rune('a'+i))+".pem"), p)
	}
	if len(bundled) > 0 {
		if err := os.Symlink("caa.pem", filepath.Join(dir, "0123abcd.0")); err != nil {
			tb.Fatal(err)
		}
	}
	for name, data := range extra {
		mustWrite(tb, filepath.Join(dir, name), data)
	}
	s := &system{}
	s.source = source{
		bundles: []string{filepath.Join(root, "missing.crt"), filepath.Join(dir, "ca-certificates.crt")},
		dirs:    []string{filepath.Join(root, "missing"), dir},
		readDir: func(d string) ([]fs.DirEntry, error) { s.listings++; return os.ReadDir(d) },
	}
	return s
}

// wholePool is the pool crypto/x509 builds from s on Linux: every
// certificate of the first readable bundle, then of every directory file
// (same-directory links skipped), all parsed.
func wholePool(tb testing.TB, s source) *x509.CertPool {
	tb.Helper()
	pool := x509.NewCertPool()
	if data := firstReadable(s.bundles); data != nil {
		pool.AppendCertsFromPEM(data)
	}
	for _, dir := range s.dirs {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if data, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && !sameDirSymlink(dir, e) {
				pool.AppendCertsFromPEM(data)
			}
		}
	}
	return pool
}

// firstReadable is the contents of the first of paths that can be read.
func firstReadable(paths []string) []byte {
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			return data
		}
	}
	return nil
}

func opts(chain []*x509.Certificate, name string, at time.Time) x509.VerifyOptions {
	o := x509.VerifyOptions{DNSName: name, CurrentTime: at, Intermediates: x509.NewCertPool()}
	for _, c := range chain[1:] {
		o.Intermediates.AddCert(c)
	}
	return o
}

// Every decision is the one crypto/x509 reaches with the whole system
// pool, and the one expected; the directories are listed only when the
// bundle's roots do not verify the chain.
func TestVerify_decidesAsTheWholePool(t *testing.T) {
	rootA := newCA(t, "Root A", nil)
	rootB := newCA(t, "Root B", nil)
	dirOnly := newCA(t, "Root only in the directory", nil)
	untrusted := newCA(t, "Untrusted", nil)
	inter := newCA(t, "Intermediate", &rootA)
	// Root A's successor: same name, another key. Only it signed
	// rolledLeaf, and it is bundled after the old one.
	rolled := newCA(t, "Root A", nil)
	rolledLeaf := newLeaf(t, &rolled, time.Time{})
	// A certificate issued under Root A's name that is not Root A: its
	// DER holds the name too (as its issuer), so it is parsed, and must
	// change nothing.
	namesake := newCA(t, "Issued by Root A", &rootA)
	// A leaf that is trusted as itself, though its issuer is not.
	pinned := newLeaf(t, &untrusted, time.Time{})

	bundled := [][]byte{rootA.pem(), namesake.pem(), rootB.pem(), rolled.pem()}
	viaA := newLeaf(t, &rootA, time.Time{})
	viaInter := newLeaf(t, &inter, time.Time{})
	viaDir := newLeaf(t, &dirOnly, time.Time{})
	viaUntrusted := newLeaf(t, &untrusted, time.Time{})
	expired := newLeaf(t, &rootA, now.Add(-time.Hour))
	trustedOnlyInOtherBlocks := map[string][]byte{
		"trusted.pem": pem.EncodeToMemory(&pem.Block{Type: "TRUSTED CERTIFICATE", Bytes: untrusted.cert.Raw}),
		"headers.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Note": "x"}, Bytes: untrusted.cert.Raw}),
	}

	for _, tc := range []struct {
		name      string
		chain     []*x509.Certificate
		host      string
		extra     map[string][]byte
		wantOK    bool
		wantLists bool // the directories are listed
	}{
		{"a bundled root signed the leaf", []*x509.Certificate{viaA}, "schwab.test", nil, true, false},
		{"the address is checked like a name", []*x509.Certificate{viaA}, "127.0.0.1", nil, true, false},
		{"through a presented intermediate", []*x509.Certificate{viaInter, inter.cert}, "schwab.test", nil, true, false},
		{"the intermediate not presented", []*x509.Certificate{viaInter}, "schwab.test", nil, false, true},
		{"a root found only in the directory", []*x509.Certificate{viaDir}, "schwab.test",
			map[string][]byte{"local.pem": dirOnly.pem()}, true, true},
		{"a root in the directory, with a comment and another root in its file", []*x509.Certificate{viaDir}, "schwab.test",
			map[string][]byte{"two.pem": append(append([]byte("# local\n"), rootB.pem()...), dirOnly.pem()...)}, true, true},
		{"no root signed the leaf", []*x509.Certificate{viaUntrusted}, "schwab.test", nil, false, true},
		{"another server's name", []*x509.Certificate{viaA}, "api.schwabapi.com", nil, false, true},
		{"another server's address", []*x509.Certificate{viaA}, "127.0.0.2", nil, false, true},
		{"an expired leaf", []*x509.Certificate{expired}, "schwab.test", nil, false, true},
		{"the second of two roots of the same name", []*x509.Certificate{rolledLeaf}, "schwab.test", nil, true, false},
		{"the leaf itself is trusted", []*x509.Certificate{pinned}, "schwab.test",
			map[string][]byte{"pinned.pem": certPEM(pinned)}, true, true},
		{"a root only in blocks crypto/x509 does not take", []*x509.Certificate{viaUntrusted}, "schwab.test",
			trustedOnlyInOtherBlocks, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := newSystem(t, bundled, tc.extra)
			err := verify(sys.source, readBundle(sys.source), tc.chain, opts(tc.chain, tc.host, now))
			if got := err == nil; got != tc.wantOK {
				t.Fatalf("verified %v (err %v), want %v", got, err, tc.wantOK)
			}
			o := opts(tc.chain, tc.host, now)
			o.Roots = wholePool(t, sys.source)
			if _, werr := tc.chain[0].Verify(o); (werr == nil) != (err == nil) {
				t.Errorf("crypto/x509 with the whole pool decides otherwise: %v", werr)
			}
			if got := sys.listings > 0; got != tc.wantLists {
				t.Errorf("directories listed %d times, want listed: %v", sys.listings, tc.wantLists)
			}
		})
	}
}

// With no bundle the directories alone decide; with nothing at all,
// nothing is trusted.
func TestVerify_withoutBundle(t *testing.T) {
	root := newCA(t, "Root", nil)
	leaf := []*x509.Certificate{newLeaf(t, &root, time.Time{})}
	sys := newSystem(t, nil, map[string][]byte{"local.pem": root.pem()})
	sys.bundles = sys.bundles[:1] // only the missing one
	if err := verify(sys.source, readBundle(sys.source), leaf, opts(leaf, "schwab.test", now)); err != nil {
		t.Errorf("a root in the directory, no bundle: %v", err)
	}
	empty := source{bundles: []string{"/nonexistent/bundle"}, dirs: []string{"/nonexistent"}, readDir: os.ReadDir}
	if err := verify(empty, readBundle(empty), leaf, opts(leaf, "schwab.test", now)); err == nil {
		t.Error("no roots at all: verified")
	}
}

// Only roots that can take part in the chain are parsed.
func TestParents_match(t *testing.T) {
	root := newCA(t, "Root", nil)
	other := newCA(t, "Other root", nil)
	inter := newCA(t, "Intermediate", &root)
	leaf := newLeaf(t, &inter, time.Time{})
	pinned := newLeaf(t, &other, time.Time{})
	p := parentsOf([]*x509.Certificate{leaf, inter.cert})
	for _, tc := range []struct {
		name string
		der  []byte
		want bool
	}{
		{"the intermediate's issuer", root.cert.Raw, true},
		{"the leaf's issuer", inter.cert.Raw, true},
		{"the leaf itself", leaf.Raw, true},
		{"an unrelated root", other.cert.Raw, false},
		{"another leaf of an unrelated root", pinned.Raw, false},
	} {
		if got := p.match(tc.der); got != tc.want {
			t.Errorf("%s: match %v, want %v", tc.name, got, tc.want)
		}
	}
	if n := p.addTo(x509.NewCertPool(), certDERs(bytes.Join([][]byte{other.pem(), root.pem(), []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n"), inter.pem()}, nil))); n != 2 {
		t.Errorf("added %d certificates, want 2 (the root and the intermediate)", n)
	}
	broken := root.cert.Raw[:len(root.cert.Raw)-1] // holds the name, does not parse
	if n := p.addTo(x509.NewCertPool(), [][]byte{broken}); n != 0 {
		t.Errorf("a block that does not parse: added %d", n)
	}
}

// Every root of this system, presented as a server's leaf, is decided as
// crypto/x509 decides with its own system pool: real roots, real DER.
func TestVerify_thisSystemsRoots(t *testing.T) {
	system, err := x509.SystemCertPool()
	if err != nil {
		t.Skipf("crypto/x509 finds no system roots here: %v", err)
	}
	data := firstReadable(sources().bundles)
	if data == nil {
		t.Skip("no CA bundle here")
	}
	checked := 0
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			continue
		}
		chain := []*x509.Certificate{cert}
		o := opts(chain, "", time.Now())
		o.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
		got := verify(sources(), readBundle(sources()), chain, o)
		o.Roots = system
		if _, want := cert.Verify(o); (got == nil) != (want == nil) {
			t.Errorf("%s: verified %v, crypto/x509 %v", cert.Subject, got, want)
		}
		checked++
	}
	t.Logf("%d roots checked", checked)
}

func TestVerify_refusesWithoutNameOrCertificate(t *testing.T) {
	root := newCA(t, "Root", nil)
	leaf := newLeaf(t, &root, time.Time{})
	if err := Prefetch().Verify(nil, "schwab.test", now); err == nil {
		t.Error("no certificate: verified")
	}
	if err := Prefetch().Verify([]*x509.Certificate{leaf}, "", now); err == nil || !strings.Contains(err.Error(), "server name") {
		t.Errorf("no name: %v, want a refusal naming the server name", err)
	}
}

// Verify passes the presented intermediates, the name and the time on.
func TestVerify_usesTheEnvironmentsRoots(t *testing.T) {
	root := newCA(t, "Root", nil)
	inter := newCA(t, "Intermediate", &root)
	chain := []*x509.Certificate{newLeaf(t, &inter, time.Time{}), inter.cert}
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "bundle.pem"), root.pem())
	t.Setenv("SSL_CERT_FILE", filepath.Join(dir, "bundle.pem"))
	t.Setenv("SSL_CERT_DIR", dir)
	if err := Prefetch().Verify(chain, "schwab.test", now); err != nil {
		t.Errorf("a chain to the bundle's root: %v", err)
	}
	if err := Prefetch().Verify(chain[:1], "schwab.test", now); err == nil {
		t.Error("without the intermediate: verified")
	}
	if err := Prefetch().Verify(chain, "other.test", now); err == nil {
		t.Error("another name: verified")
	}
	if err := Prefetch().Verify(chain, "schwab.test", time.Unix(1950000000, 0)); err == nil {
		t.Error("after the leaf expired: verified")
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

// The first readable bundle counts, as in crypto/x509, and of it the
// blocks crypto/x509 would parse.
func TestReadBundle(t *testing.T) {
	a, b := newCA(t, "A", nil), newCA(t, "B", nil)
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "b.pem"), bytes.Join([][]byte{[]byte("# roots\n"), a.pem(),
		pem.EncodeToMemory(&pem.Block{Type: "TRUSTED CERTIFICATE", Bytes: b.cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Note": "x"}, Bytes: b.cert.Raw}),
		b.pem()}, nil))
	got := readBundle(source{bundles: []string{filepath.Join(dir, "missing"), dir, filepath.Join(dir, "b.pem")}})
	if got.path != filepath.Join(dir, "b.pem") || len(got.ders) != 2 ||
		!bytes.Equal(got.ders[0], a.cert.Raw) || !bytes.Equal(got.ders[1], b.cert.Raw) {
		t.Errorf("got %q with %d certificates, want the readable file after a missing one and a directory, A then B", got.path, len(got.ders))
	}
	if got := readBundle(source{bundles: []string{filepath.Join(dir, "missing")}}); got.path != "" || got.ders != nil {
		t.Errorf("nothing readable: got %+v", got)
	}
}

// Prefetch reads the bundle the environment names when it is called.
func TestPrefetch_readsTheBundleOfItsTime(t *testing.T) {
	root := newCA(t, "Root", nil)
	chain := []*x509.Certificate{newLeaf(t, &root, time.Time{})}
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "bundle.pem"), root.pem())
	t.Setenv("SSL_CERT_FILE", filepath.Join(dir, "bundle.pem"))
	t.Setenv("SSL_CERT_DIR", dir)
	p := Prefetch()
	t.Setenv("SSL_CERT_FILE", filepath.Join(dir, "missing.pem"))
	if err := p.Verify(chain, "schwab.test", now); err != nil {
		t.Errorf("prefetched bundle: %v", err)
	}
	if err := Prefetch().Verify(chain, "schwab.test", now); err != nil {
		t.Errorf("the directory still holds the root: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "bundle.pem")); err != nil {
		t.Fatal(err)
	}
	if err := Prefetch().Verify(chain, "schwab.test", now); err == nil {
		t.Error("no bundle and an empty directory: verified")
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

// BenchmarkVerify verifies a chain to a root appended to this system's
// bundle, as the daemon does for each token request (bench/perf's
// server sits there too). For comparison, crypto/x509 parses the whole
// system pool once per process: on Debian 12, 145 roots, 3.7 MB in
// 37,600 allocations.
func BenchmarkVerify(b *testing.B) {
	system := firstReadable(sources().bundles)
	root := newCA(b, "Bench root", nil)
	dir := b.TempDir()
	mustWrite(b, filepath.Join(dir, "bundle.pem"), append(system, root.pem()...))
	s := source{bundles: []string{filepath.Join(dir, "bundle.pem")}, dirs: []string{dir}, readDir: os.ReadDir}
	chain := []*x509.Certificate{newLeaf(b, &root, time.Time{})}
	b.ReportAllocs()
	for b.Loop() {
		if err := verify(s, readBundle(s), chain, opts(chain, "schwab.test", now)); err != nil {
			b.Fatal(err)
		}
	}
}
