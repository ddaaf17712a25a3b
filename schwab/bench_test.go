package schwab_test

import (
	"testing"

	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/schwab"
)

// BenchmarkClient_Refresh measures one refresh over real HTTPS against the
// fake, with keep-alive.
func BenchmarkClient_Refresh(b *testing.B) {
	e := mustStart(b)
	rt := e.fake.Login().RefreshToken
	for b.Loop() {
		if _, err := e.client.Refresh(b.Context(), rt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClient_RefreshChaos has every fifth refresh hit a fault; it
// reports how many calls failed transiently (they must all be transient).
func BenchmarkClient_RefreshChaos(b *testing.B) {
	e := mustStart(b)
	rt := e.fake.Login().RefreshToken
	e.fake.SetFaultEvery(5, fakeschwab.FaultHTML403(), fakeschwab.Fault5xx(503), fakeschwab.FaultReset(),
		fakeschwab.FaultTruncatedJSON(), fakeschwab.FaultRateLimit(0))
	failed := 0
	for b.Loop() {
		_, err := e.client.Refresh(b.Context(), rt)
		if err != nil {
			if schwab.IsRelogin(err) {
				b.Fatalf("fault classified as relogin: %v", err)
			}
			failed++
		}
	}
	b.ReportMetric(float64(failed)/float64(b.N), "failures/op")
}
