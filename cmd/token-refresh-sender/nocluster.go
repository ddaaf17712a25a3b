//go:build !cluster

package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/schwabtools/token-refresh-sender/login"
	"github.com/schwabtools/token-refresh-sender/status"
)

// clusterBuilt is false in the default build: run hands a command line
// with --etcd-endpoints to token-refresh-sender-cluster
// (execClusterBinary), so the entry points below answer only when that
// hand-over is not made (commands run in-process, as tests do).
const clusterBuilt = false

// errClusterNotBuilt is every cluster entry point's answer in this build.
func errClusterNotBuilt() error { return usage(errNoCluster(clusterBinaryName, nil)) }

func (g *Globals) checkCluster() error { return errClusterNotBuilt() }

func (m *Main) runCluster(context.Context, *observers, <-chan struct{}, <-chan struct{}) error {
	return errClusterNotBuilt()
}

func (g *Globals) clusterLogin(string, *slog.Logger) (func(context.Context, login.Options) (*login.Result, error), func() error, error) {
	return nil, nil, errClusterNotBuilt()
}

func (g *Globals) statusCluster(io.Writer, bool, status.Report) error {
	return errClusterNotBuilt()
}
