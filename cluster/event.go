package cluster

import "time"

// EventKind names a cluster state change.
type EventKind int

const (
	// EventLeading: this instance became the leader.
	EventLeading EventKind = iota + 1
	// EventDeposed: this instance stopped leading (Err says why; nil
	// when it resigned to shut down).
	EventDeposed
	// EventUnavailable: no contact with etcd for longer than the lease:
	// nobody refreshes; Record is the token the local bots keep.
	EventUnavailable
	// EventAvailable: etcd answers again after EventUnavailable.
	EventAvailable
	// EventApplied: a new record was applied locally (Record is set).
	EventApplied
	// EventApplyFailed: a record could not be read or applied (Err).
	EventApplyFailed
)

func (k EventKind) String() string {
	switch k {
	case EventLeading:
		return "cluster_leading"
	case EventDeposed:
		return "cluster_deposed"
	case EventUnavailable:
		return "cluster_unavailable"
	case EventAvailable:
		return "cluster_available"
	case EventApplied:
		return "cluster_applied"
	case EventApplyFailed:
		return "cluster_apply_failed"
	}
	return "unknown"
}

// Event is what observers hear from a Node. Record carries a token, which
// observers must not print (tokensender.Token redacts itself).
type Event struct {
	Kind EventKind
	At   time.Time
	Node string
	// Record is the record concerned (EventApplied, EventApplyFailed) or
	// the one the local bots hold (EventUnavailable).
	Record Record
	// Since is when contact with etcd was lost (EventUnavailable,
	// EventAvailable).
	Since time.Time
	Err   error
}
