//go:build linux

package delivery

import (
	"context"
	"testing"

	"github.com/schwabtools/token-refresh-sender/internal/testproc"
)

// Another user who takes the bot's loopback TCP port first gets nothing,
// on 127.0.0.1 and on ::1, and the log names the address and the uid;
// with --allow-peer-uid the same listener gets the message (so the 0 bytes
// are the guard's doing).
func TestSender_Send_withholdsFromAnotherUsersTCPPort(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			sq := testproc.SquatTCP(t, host)
			target := Address{"tcp", sq.Addr}
			var logs logRecorder
			s := fastSender(&logs, target)
			res := s.Send(context.Background(), testMsg).Wait()
			if res[0].Outcome != Withheld || res[0].Attempts != 1 {
				t.Errorf("result = %+v, want withheld after 1 attempt", res[0])
			}
			if n := sq.NextConn(t); n != 0 {
				t.Errorf("the squatter received %d bytes, want 0", n)
			}
			assertLines(t, logs.Lines(), []string{"ERROR Withheld token from tcp://" + sq.Addr +
				": the process listening there runs as uid 65534, not as this user (uid 0) or root; if it is your bot, pass --allow-peer-uid 65534"})

			s.AllowedPeerUIDs = []int{testproc.Nobody}
			res = s.Send(context.Background(), testMsg).Wait()
			if res[0].Outcome != DeliveredNoAck {
				t.Errorf("allowed: result = %+v, want delivered without acknowledgment", res[0])
			}
			if n := sq.NextConn(t); n != len(testMsg.Wire()) {
				t.Errorf("allowed: the listener received %d bytes, want %d", n, len(testMsg.Wire()))
			}
		})
	}
}
