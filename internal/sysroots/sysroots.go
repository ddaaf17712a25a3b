// Package sysroots loads the system's trusted root certificates as
// crypto/x509 does, but parses each certificate once.
//
// On Linux crypto/x509 reads the first CA bundle it finds and then every
// file of the certificate directories, and parses them all: on Debian that
// is the bundle, the same bundle again (/etc/ssl/certs/ca-certificates.crt
// lies in /etc/ssl/certs) and one file per certificate, each certificate
// parsed two or three times. For a daemon that makes one TLS connection
// every 25 minutes that is most of its start-up time and, as garbage that
// fragments the heap, most of its private memory. Load reads the same
// files, in the same order, and skips a directory file whose certificates
// (the same DER bytes) all came in the bundle, so trust is the same: a
// certificate that is only in the directory still counts.
package sysroots

import (
	"crypto/x509"
	"sync"
)

// Load returns the system roots, or nil when the platform's own loader
// must be used (every system but Linux, or when nothing was found: nil
// RootCAs then makes crypto/x509 load, or fail, as it always does).
func Load() *x509.CertPool {
	pool, err := load(sources())
	if err != nil || pool == nil {
		return nil
	}
	return pool
}

// Staged returns the system roots in two stages, for a client that makes
// few connections and wants the first one soon: bundle is the pool of the
// CA bundle alone, parsed now (nil when there is none, or outside Linux),
// and all returns the pool Load returns, reading the certificate
// directories at its first call (nil: the platform's own roots).
//
// bundle trusts a subset of what all trusts: a server that bundle verifies
// all verifies too. A client that retries with all whenever bundle fails
// to verify a server therefore trusts exactly what Load's pool trusts,
// and on the usual system, where the directory only repeats the bundle,
// never reads the directory (146 files, about half of Load's time).
func Staged() (bundle *x509.CertPool, all func() *x509.CertPool) {
	s := sources()
	b := loadBundle(s)
	all = sync.OnceValue(func() *x509.CertPool {
		pool, err := b.withDirectories(s)
		if err != nil {
			return nil
		}
		return pool
	})
	return b.bundleOnly(), all
}
