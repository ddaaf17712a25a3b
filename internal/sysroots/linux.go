//go:build linux && !android

package sysroots

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The places crypto/x509 looks on Linux (root_linux.go), and its
// environment overrides (root_unix.go).
var (
	bundles = []string{
		"/etc/ssl/certs/ca-certificates.crt",
		"/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/ssl/ca-bundle.pem",
		"/etc/pki/tls/cacert.pem",
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"/etc/ssl/cert.pem",
	}
	directories = []string{"/etc/ssl/certs", "/etc/pki/tls/certs"}
)

// source is where to look: candidate bundles (the first readable one is
// used) and directories (all are read, with readDir).
type source struct {
	bundles, dirs []string
	readDir       func(dir string) ([]fs.DirEntry, error)
}

func sources() source {
	s := source{bundles: bundles, dirs: directories, readDir: os.ReadDir}
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		s.bundles = []string{f}
	}
	if d := os.Getenv("SSL_CERT_DIR"); d != "" {
		s.dirs = strings.Split(d, ":")
	}
	return s
}

// bundle is the first CA bundle of a source that could be read: its path
// ("" when none could) and the DER of its certificate blocks, in order.
type bundle struct {
	path string
	ders [][]byte
}

// readBundle reads and decodes the first readable bundle of s.
func readBundle(s source) bundle {
	for _, p := range s.bundles {
		if data, err := os.ReadFile(p); err == nil {
			return bundle{path: p, ders: certDERs(data)}
		}
	}
	return bundle{}
}

// certDERs returns the DER of every block of data, a PEM file, that
// x509.CertPool.AppendCertsFromPEM would try to parse: CERTIFICATE blocks
// without headers.
func certDERs(data []byte) [][]byte {
	var ders [][]byte
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			return ders
		}
		data = rest
		if block.Type == "CERTIFICATE" && len(block.Headers) == 0 {
			ders = append(ders, block.Bytes)
		}
	}
}

// verify verifies certs[0] with opts (Roots unset) against the roots of s
// that can be parents in its chain: b's (s's bundle), and when they are
// not enough, the directories' too. The second verification has every
// candidate of the system, so its decision is the system pool's; the
// first one's success is too, as more roots only add chains.
func verify(s source, b bundle, certs []*x509.Certificate, opts x509.VerifyOptions) error {
	want := parentsOf(certs)
	opts.Roots = x509.NewCertPool()
	want.addTo(opts.Roots, b.ders)
	_, err := certs[0].Verify(opts)
	if err == nil {
		return nil
	}
	if want.addFromDirectories(opts.Roots, s, b.path) == 0 {
		return err // no other root to try
	}
	_, err = certs[0].Verify(opts)
	return err
}

// parents is what a root must hold to take part in verifying a chain:
// crypto/x509 takes a root as the parent of a certificate only when the
// root's subject is that certificate's issuer name, and as the whole
// chain when it is the leaf itself.
type parents struct {
	leaf    []byte   // the leaf's DER
	issuers [][]byte // the DER issuer name of each presented certificate
}

func parentsOf(certs []*x509.Certificate) parents {
	p := parents{leaf: certs[0].Raw}
	for _, c := range certs {
		p.issuers = append(p.issuers, c.RawIssuer)
	}
	return p
}

// match reports whether der, a root's DER, may be one of the parents: it
// is the leaf, or holds an issuer name (a root's subject is a contiguous
// part of its DER, so every root whose subject is that name holds it).
func (p parents) match(der []byte) bool {
	if bytes.Equal(der, p.leaf) {
		return true
	}
	for _, name := range p.issuers {
		if bytes.Contains(der, name) {
			return true
		}
	}
	return false
}

// addTo parses the certificates of ders that match and adds them to
// pool, in their order; it returns how many it added. Like
// x509.CertPool.AppendCertsFromPEM it skips those that do not parse.
func (p parents) addTo(pool *x509.CertPool, ders [][]byte) int {
	added := 0
	for _, der := range ders {
		if !p.match(der) {
			continue
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			continue
		}
		pool.AddCert(cert)
		added++
	}
	return added
}

// addFromDirectories adds the matching certificates of every file of the
// directories of s to pool, as addTo, and returns how many it added. It
// reads what crypto/x509 reads (hash links to a file of the same
// directory are skipped: the file is read under its own name) except the
// bundle, whose certificates the pool has been offered already.
func (p parents) addFromDirectories(pool *x509.CertPool, s source, bundle string) int {
	added := 0
	var buf []byte // one buffer for every file
	for _, dir := range s.dirs {
		entries, err := s.readDir(dir)
		if err != nil {
			continue // as crypto/x509: a missing or unreadable directory adds nothing
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			if path == bundle || sameDirSymlink(dir, e) {
				continue
			}
			if buf, err = readInto(buf, path); err != nil {
				continue // a subdirectory or an unreadable file adds nothing
			}
			added += p.addTo(pool, certDERs(buf))
		}
	}
	return added
}

// sameDirSymlink reports whether e is a symlink to a file of the same
// directory (a hash link such as 002c0b4f.0), which crypto/x509 skips.
func sameDirSymlink(dir string, e fs.DirEntry) bool {
	if e.Type()&fs.ModeSymlink == 0 {
		return false
	}
	target, err := os.Readlink(filepath.Join(dir, e.Name()))
	return err == nil && !strings.Contains(target, "/")
}

// readInto reads the file at path into buf, reusing its memory, and
// returns it.
func readInto(buf []byte, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf[:0], err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return buf[:0], err
	}
	// One byte more than the size, so a file that is as long as it says
	// is read in one call and io.EOF seen in the next.
	if want := int(st.Size()) + 1; cap(buf) < want {
		buf = make([]byte, 0, want)
	}
	buf = buf[:0]
	for {
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf[:0], err
		}
		if len(buf) == cap(buf) { // the file grew
			buf = append(buf, 0)[:len(buf)]
		}
	}
}
