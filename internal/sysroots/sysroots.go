// Package sysroots verifies a TLS server's certificate chain against the
// system's trusted roots, deciding as crypto/tls does when its RootCAs is
// nil, but parsing only the roots that can take part in the chain.
//
// On Linux crypto/x509 parses every root it trusts before the first
// verification: on Debian the CA bundle, the same bundle again (it lies in
// /etc/ssl/certs) and one file per root, about 290 parses and 3.7 MB of
// garbage for a daemon that makes one TLS connection every 25 minutes.
// Yet its verifier takes a root into a chain only as the parent of a
// certificate whose issuer name is, byte for byte, the root's subject
// (CertPool.findPotentialParents), or as the leaf itself. Verify reads the
// same files crypto/x509 reads, in the same order, decodes their PEM
// blocks (cheap), and parses only the blocks whose DER is the leaf's or
// contains the issuer name of a presented certificate: a superset of
// those roots, in their order, so the verifier builds the same chains and
// reaches the same decision as with the whole system pool.
//
// The CA bundle comes first; the certificate directories (on Debian 146
// files repeating the bundle) are read only when the bundle's roots do
// not verify the chain. Nothing is kept between calls: an updated CA
// bundle counts at the next connection. Prefetch reads and decodes the
// bundle in the background, so that a client can overlap that work with
// the wait for the server's certificate.
//
// Outside Linux the platform's own roots and verifier are used, as
// crypto/tls uses them.
package sysroots

import (
	"crypto/x509"
	"errors"
	"time"
)

// Prefetched is the CA bundle read and decoded ahead of a verification.
// A client starts it when it has sent its first message to the server,
// and the work overlaps the wait for the server's answer.
type Prefetched struct {
	ready  chan struct{}
	source source
	bundle bundle
}

// Prefetch starts reading the system's CA bundle in the background.
func Prefetch() *Prefetched {
	p := &Prefetched{ready: make(chan struct{}), source: sources()}
	go func() {
		defer close(p.ready)
		p.bundle = readBundle(p.source)
	}()
	return p
}

// Verify checks a server's chain as presented (the leaf first, then the
// certificates sent with it) for the server name name at now, against the
// system roots: what crypto/tls does when it verifies a server with
// RootCAs nil (x509.Certificate.Verify with certs[1:] as intermediates and
// name as DNSName), with the roots read as the package comment says. It
// waits for p's reading of the bundle to finish.
func (p *Prefetched) Verify(certs []*x509.Certificate, name string, now time.Time) error {
	if len(certs) == 0 {
		return errors.New("the server sent no certificate")
	}
	if name == "" {
		// crypto/tls refuses this too: without a name, any valid
		// certificate of any server would pass.
		return errors.New("no server name to verify the certificate against")
	}
	opts := x509.VerifyOptions{DNSName: name, CurrentTime: now, Intermediates: x509.NewCertPool()}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	<-p.ready
	return verify(p.source, p.bundle, certs, opts)
}
