//go:build cluster

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/schwabtools/token-refresh-sender/cluster"
	"github.com/schwabtools/token-refresh-sender/config"
	"github.com/schwabtools/token-refresh-sender/status"
)

// clusterStatusLimit bounds status's whole conversation with etcd.
const clusterStatusLimit = 5 * time.Second

// clusterReport is the cluster part of status: who leads, the record's
// expiry and writer, and what each instance last applied.
type clusterReport struct {
	Leader string `json:"leader"` // "" when nobody leads
	// Record is nil when etcd holds no record; RecordError says why it
	// could not be read (another key, no key).
	Record      *clusterRecord      `json:"record"`
	RecordError string              `json:"record_error,omitempty"`
	Nodes       []clusterNodeReport `json:"nodes"`
}

type clusterRecord struct {
	Seq                  uint64 `json:"seq"`
	Revision             int64  `json:"revision"`
	Writer               string `json:"writer"`
	Reason               string `json:"reason"`
	WrittenAt            string `json:"written_at"`
	AccessTokenExpiresAt string `json:"access_token_expires_at"`
}

type clusterNodeReport struct {
	Name      string `json:"name"`
	Seq       uint64 `json:"seq"`
	Revision  int64  `json:"revision"`
	AppliedAt string `json:"applied_at"`
}

// readClusterStatus connects to etcd and reads the cluster's state. An
// error means etcd could not be asked (UNKNOWN); an unreadable record is
// reported in the result.
func (g *Globals) readClusterStatus(ctx context.Context) (*clusterReport, error) {
	appKey := ""
	if g.EtcdPrefix == "" {
		// The default prefix comes from the app key.
		app, _, err := config.Load(g.Config, os.Getenv)
		if err != nil {
			return nil, fmt.Errorf("cluster: the app config is needed for the default --etcd-prefix: %w", err)
		}
		appKey = app.AppKey
	}
	cfg, err := g.clusterConfig(appKey, os.Getenv)
	if err != nil {
		return nil, err
	}
	cfg.DialTimeout = clusterStatusLimit
	// status reads only; the warning about records in clear belongs to run.
	cl, err := cluster.Open(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, clusterStatusLimit)
	defer cancel()
	if _, err := cl.Client.Get(ctx, cl.TokenKey(), clientv3.WithCountOnly()); err != nil {
		return nil, fmt.Errorf("cluster: etcd at %s does not answer: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	st, err := cl.ReadStatus(ctx)
	rep := &clusterReport{Leader: st.Leader, Nodes: []clusterNodeReport{}}
	if err != nil {
		rep.RecordError = err.Error()
		return rep, nil
	}
	if st.HasRecord {
		r := st.Record
		rep.Record = &clusterRecord{Seq: r.Seq, Revision: r.ModRevision, Writer: r.Writer, Reason: r.Reason,
			WrittenAt: r.WrittenAt.UTC().Format(time.RFC3339), AccessTokenExpiresAt: r.Token.ExpiresAt.UTC().Format(time.RFC3339)}
	}
	for _, n := range st.Nodes {
		rep.Nodes = append(rep.Nodes, clusterNodeReport{Name: n.Name, Seq: n.Seq, Revision: n.Revision, AppliedAt: n.AppliedAt.UTC().Format(time.RFC3339)})
	}
	return rep, nil
}

// judge folds the cluster's state into r: nobody leading is a warning (no
// instance refreshes), a missing or unreadable record critical.
func (c *clusterReport) judge(r *status.Report) {
	worse := func(s status.State, msg string) {
		if s.ExitCode() > r.State.ExitCode() || r.State == status.Unknown {
			r.State, r.Message = s, msg
		}
	}
	switch {
	case c.RecordError != "":
		worse(status.Critical, "cluster: the token record cannot be read: "+c.RecordError)
	case c.Record == nil:
		worse(status.Critical, "cluster: etcd holds no token record; run `token-refresh-sender login` with --etcd-endpoints")
	}
	if c.Leader == "" {
		worse(status.Warning, "cluster: no instance leads, so nobody refreshes the token")
	}
}

// writeText appends the cluster's lines to the text report.
func (c *clusterReport) writeText(w io.Writer) error {
	var b strings.Builder
	line := func(label, value string) { fmt.Fprintf(&b, "%-23s%s\n", label+":", value) }
	leader := c.Leader
	if leader == "" {
		leader = "none (nobody refreshes)"
	}
	line("Cluster leader", leader)
	switch {
	case c.RecordError != "":
		line("Cluster record", "unreadable: "+c.RecordError)
	case c.Record == nil:
		line("Cluster record", "none")
	default:
		r := c.Record
		line("Cluster record", fmt.Sprintf("#%d (%s by %s at %s), access token expires %s", r.Seq, r.Reason, r.Writer, r.WrittenAt, r.AccessTokenExpiresAt))
	}
	for _, n := range c.Nodes {
		line("Cluster node "+n.Name, fmt.Sprintf("applied record #%d at %s", n.Seq, n.AppliedAt))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeJSON writes r's JSON object with a "cluster" member added.
func (c *clusterReport) writeJSON(w io.Writer, r status.Report) error {
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		return err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &obj); err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	cj, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	obj["cluster"] = cj
	data, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// clusterUnknown reports that etcd could not be asked: one line (text or
// JSON), exit 3.
func clusterUnknown(w io.Writer, asJSON bool, err error) error {
	if asJSON {
		data, jerr := json.Marshal(map[string]any{"state": status.Unknown, "exit_code": status.Unknown.ExitCode(), "message": err.Error()})
		if jerr != nil {
			return fmt.Errorf("encode status: %w", jerr)
		}
		fmt.Fprintln(w, string(data))
	} else {
		fmt.Fprintln(w, "UNKNOWN: "+err.Error())
	}
	return exitCode(status.Unknown.ExitCode())
}

// statusCluster finishes status in cluster mode: r, the local report,
// with the cluster's state (from etcd) folded in and appended. A host
// without a token file is fine in a cluster (it follows), but the local
// file is still judged: it is what the bots read.
func (g *Globals) statusCluster(w io.Writer, asJSON bool, r status.Report) error {
	cr, err := g.readClusterStatus(context.Background())
	if err != nil {
		return clusterUnknown(w, asJSON, err)
	}
	cr.judge(&r)
	if asJSON {
		if err := cr.writeJSON(w, r); err != nil {
			return err
		}
	} else if err := r.WriteText(w); err != nil {
		return err
	} else if err := cr.writeText(w); err != nil {
		return err
	}
	if code := r.ExitCode(); code != 0 {
		return exitCode(code)
	}
	return nil
}
