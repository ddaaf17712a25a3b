package delivery_test

import (
	"github.com/schwabtools/token-refresh-sender/daemon"
	"github.com/schwabtools/token-refresh-sender/delivery"
)

// The refresh loop takes a *Sender as it is, without an adapter.
var _ daemon.Deliverer = (*delivery.Sender)(nil)
