//go:build !linux || android

package sysroots

import "crypto/x509"

// source is unused: outside Linux the platform's verifier or loader is
// used as it is.
type source struct{}

func sources() source { return source{} }

func load(source) (*x509.CertPool, error) { return nil, nil }

// bundleStage is empty: there is no bundle to load apart.
type bundleStage struct{}

func loadBundle(source) bundleStage { return bundleStage{} }

func (bundleStage) bundleOnly() *x509.CertPool { return nil }

func (bundleStage) withDirectories(s source) (*x509.CertPool, error) { return load(s) }
