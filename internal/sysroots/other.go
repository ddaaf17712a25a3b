//go:build !linux || android

package sysroots

import "crypto/x509"

// source is empty: outside Linux the platform decides which roots count.
type source struct{}

func sources() source { return source{} }

// bundle is empty: nothing is read ahead.
type bundle struct{}

func readBundle(source) bundle { return bundle{} }

// verify leaves opts.Roots nil: crypto/x509's system roots, or the
// platform's verifier, exactly as crypto/tls uses them.
func verify(_ source, _ bundle, certs []*x509.Certificate, opts x509.VerifyOptions) error {
	_, err := certs[0].Verify(opts)
	return err
}
