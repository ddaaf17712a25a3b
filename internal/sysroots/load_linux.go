//go:build linux && !android

package sysroots

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
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
// used) and directories (all are read).
type source struct {
	bundles, dirs []string
}

func sources() source {
	s := source{bundles: bundles, dirs: directories}
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		s.bundles = []string{f}
	}
	if d := os.Getenv("SSL_CERT_DIR"); d != "" {
		s.dirs = strings.Split(d, ":")
	}
	return s
}

// load builds the pool from s: the bundle, then the directories. It
// returns nil (and the first error other than a missing file) when it
// found no certificate, like crypto/x509.
func load(s source) (*x509.CertPool, error) {
	return loadBundle(s).withDirectories(s)
}

// bundleStage is the first bundle of a source that could be read, parsed.
type bundleStage struct {
	pool     *x509.CertPool // nil: no bundle could be read
	found    bool           // it held at least one certificate
	path     string
	index    bundleIndex
	firstErr error // the first failure other than a missing file
}

func (b *bundleStage) note(err error) {
	if b.firstErr == nil && !errors.Is(err, fs.ErrNotExist) {
		b.firstErr = err
	}
}

// loadBundle reads and parses the first readable bundle of s.
func loadBundle(s source) bundleStage {
	var b bundleStage
	for _, f := range s.bundles {
		data, err := os.ReadFile(f)
		if err != nil {
			b.note(err)
			continue
		}
		b.pool = x509.NewCertPool()
		b.found = b.pool.AppendCertsFromPEM(data)
		b.path = f
		b.index = indexBundle(data)
		break
	}
	return b
}

// bundleOnly is the bundle's pool, or nil when it has no certificate.
func (b bundleStage) bundleOnly() *x509.CertPool {
	if !b.found {
		return nil
	}
	return b.pool
}

// withDirectories returns a new pool: the bundle's certificates and those
// of the directories of s that the bundle did not hold.
func (b bundleStage) withDirectories(s source) (*x509.CertPool, error) {
	pool, found := x509.NewCertPool(), b.found
	if b.pool != nil {
		pool = b.pool.Clone()
	}
	var buf []byte // one buffer for every file
	for _, dir := range s.dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			b.note(err)
			continue
		}
		for _, e := range entries {
			if sameDirSymlink(dir, e) {
				continue // the file it names is read under its own name
			}
			path := filepath.Join(dir, e.Name())
			if path == b.path {
				continue // the bundle itself
			}
			if buf, err = readInto(buf, path); err != nil {
				continue // as crypto/x509: an unreadable entry (a subdirectory) adds nothing
			}
			if b.index.holds(buf) {
				continue // parsed already, or holds no certificate
			}
			found = pool.AppendCertsFromPEM(buf) || found
		}
	}
	if !found {
		return nil, b.firstErr
	}
	return pool, nil
}

// certBlocks returns the DER of every block of data that
// x509.CertPool.AppendCertsFromPEM would try to parse. Decoding PEM is
// cheap; parsing a certificate is not.
func certBlocks(data []byte) [][]byte {
	var ders [][]byte
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return ders
		}
		if isCertBlock(block) {
			ders = append(ders, block.Bytes)
		}
	}
}

// bundleIndex is what the bundle held, to recognise a directory file whose
// certificates all came in it: the SHA-224 of each certificate's DER, and
// of the exact text of each PEM block (from its "-----BEGIN" to the end of
// its "-----END" line). On Debian every file of /etc/ssl/certs is a
// byte-for-byte copy of one block of the bundle, recognised by its text
// without decoding it.
type bundleIndex struct {
	der, text map[[sha256.Size224]byte]bool
}

// indexBundle indexes the PEM blocks of data.
func indexBundle(data []byte) bundleIndex {
	idx := bundleIndex{der: map[[sha256.Size224]byte]bool{}, text: map[[sha256.Size224]byte]bool{}}
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			return idx
		}
		// What Decode consumed ends with this block; the block's text
		// starts at the last BEGIN line in it (a base64 body or a header
		// never holds "-----BEGIN").
		consumed := data[:len(data)-len(rest)]
		if i := bytes.LastIndex(consumed, pemBegin); i >= 0 {
			idx.text[sha256.Sum224(bytes.TrimSpace(consumed[i:]))] = true
		}
		if isCertBlock(block) {
			idx.der[sha256.Sum224(block.Bytes)] = true
		}
		data = rest
	}
}

var pemBegin = []byte("-----BEGIN")

// holds reports whether every certificate AppendCertsFromPEM would take
// from data came in the bundle, so the pool has it (or rejected the same
// bytes already). A file that is one of the bundle's blocks, byte for
// byte, decodes to that very block; any other file is decoded and its
// certificates compared by DER.
func (idx bundleIndex) holds(data []byte) bool {
	if idx.text[sha256.Sum224(bytes.TrimSpace(data))] {
		return true
	}
	for _, der := range certBlocks(data) {
		if !idx.der[sha256.Sum224(der)] {
			return false
		}
	}
	return true
}

// isCertBlock reports whether AppendCertsFromPEM would parse block.
func isCertBlock(block *pem.Block) bool {
	return block.Type == "CERTIFICATE" && len(block.Headers) == 0
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
