package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Status is the cluster as the status command shows it.
type Status struct {
	// Leader is the leading node's name ("" when nobody leads).
	Leader string
	// Record is the current token record (HasRecord false when none). Its
	// Token holds secrets: show only its expiry and redacted forms.
	Record    Record
	HasRecord bool
	// Nodes are the instances' reports of the last record they applied,
	// by name.
	Nodes []NodeReport
}

// NodeReport is what an instance last applied (written after each record
// it applied; it stays after the instance stops).
type NodeReport struct {
	Name      string    `json:"-"`
	Seq       uint64    `json:"seq"`
	Revision  int64     `json:"revision"`
	AppliedAt time.Time `json:"applied_at"`
}

// ReadStatus reads the leader, the record and the node reports.
func (c *Cluster) ReadStatus(ctx context.Context) (Status, error) {
	var st Status
	var err error
	if st.Leader, err = c.Leader(ctx); err != nil {
		return st, err
	}
	st.Record, st.HasRecord, err = c.ReadRecord(ctx)
	if err != nil {
		return st, err
	}
	nodes, err := c.Client.Get(ctx, c.NodeKey(""), clientv3.WithPrefix())
	if err != nil {
		return st, fmt.Errorf("read node reports from etcd: %w", err)
	}
	for _, kv := range nodes.Kvs {
		var r NodeReport
		if json.Unmarshal(kv.Value, &r) != nil {
			continue
		}
		r.Name = strings.TrimPrefix(string(kv.Key), c.NodeKey(""))
		st.Nodes = append(st.Nodes, r)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Name < st.Nodes[j].Name })
	return st, nil
}

// Leader is the name of the node that leads ("" when nobody does): the
// election's oldest key, as concurrency.Election.Leader reads it.
func (c *Cluster) Leader(ctx context.Context) (string, error) {
	resp, err := c.Client.Get(ctx, c.ElectionPrefix()+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("read the cluster leader from etcd: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// report records that this node applied rec.
func (c *Cluster) report(ctx context.Context, rec Record) error {
	b, err := json.Marshal(NodeReport{Seq: rec.Seq, Revision: rec.ModRevision, AppliedAt: c.now().UTC().Truncate(time.Second)})
	if err != nil {
		return err
	}
	if _, err := c.Client.Put(ctx, c.NodeKey(c.NodeName), string(b)); err != nil {
		return fmt.Errorf("report applied record to etcd: %w", err)
	}
	return nil
}
