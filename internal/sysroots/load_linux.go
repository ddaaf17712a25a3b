//go:build linux && !android

package sysroots

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
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

// load builds the pool from s. It returns nil (and the first error other
// than a missing file) when it found no certificate, like crypto/x509.
func load(s source) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	found := false
	var firstErr error
	note := func(err error) {
		if firstErr == nil && !errors.Is(err, fs.ErrNotExist) {
			firstErr = err
		}
	}
	bundled := map[[sha256.Size224]byte]bool{}
	bundlePath := "" // the bundle is often in a directory too
	for _, f := range s.bundles {
		data, err := os.ReadFile(f)
		if err != nil {
			note(err)
			continue
		}
		found = pool.AppendCertsFromPEM(data) || found
		bundlePath = f
		for _, der := range certBlocks(data) {
			bundled[sha256.Sum224(der)] = true
		}
		break
	}
	var buf bytes.Buffer // one buffer for every file
	for _, dir := range s.dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			note(err)
			continue
		}
		for _, e := range entries {
			if sameDirSymlink(dir, e) {
				continue // the file it names is read under its own name
			}
			path := filepath.Join(dir, e.Name())
			if path == bundlePath {
				continue // the bundle itself
			}
			if err := readInto(&buf, path); err != nil {
				continue // as crypto/x509: an unreadable entry (a subdirectory) adds nothing
			}
			if allBundled(certBlocks(buf.Bytes()), bundled) {
				continue // parsed already, or holds no certificate
			}
			found = pool.AppendCertsFromPEM(buf.Bytes()) || found
		}
	}
	if !found {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, nil
	}
	return pool, nil
}

// certBlocks returns the DER of every block of data that
// x509.CertPool.AppendCertsFromPEM would try to parse: type CERTIFICATE,
// no headers. Decoding PEM is cheap; parsing a certificate is not.
func certBlocks(data []byte) [][]byte {
	var ders [][]byte
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return ders
		}
		if block.Type == "CERTIFICATE" && len(block.Headers) == 0 {
			ders = append(ders, block.Bytes)
		}
	}
}

// allBundled reports whether every DER in ders was in the bundle: the
// pool then has each (or rejected the same bytes already).
func allBundled(ders [][]byte, bundled map[[sha256.Size224]byte]bool) bool {
	for _, der := range ders {
		if !bundled[sha256.Sum224(der)] {
			return false
		}
	}
	return true
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

// readInto replaces buf's content with the file at path.
func readInto(buf *bytes.Buffer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf.Reset()
	_, err = buf.ReadFrom(f)
	return err
}
