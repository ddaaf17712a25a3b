// Package cluster runs token-refresh-sender on several hosts that share one
// token through etcd: one instance, elected with etcd's own election
// (concurrency.Election on a session lease), refreshes the token and stores
// it as one record under <prefix>/token; every instance watches that record
// and hands each new token to a consumer that writes the local token file
// and delivers it to the local bots. A cluster-wide mutex
// (concurrency.Mutex) keeps two browser logins from running at once.
//
// The package knows nothing of the token file, Schwab or the sockets: the
// caller passes small functions (seed from the local file, apply a record
// locally, run the refresh loop while leading). LeaderStore has the shape
// of the refresh loop's Store, so the usual loop runs unchanged on the
// leader, with etcd in place of the file.
package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// PasswordEnv is the only place the etcd password is read from (never a
// flag: argv is visible to every user).
const PasswordEnv = "TOKEN_SENDER_ETCD_PASSWORD"

// DefaultLeaseTTL is the session lease's TTL: how long a dead leader keeps
// leadership before another instance takes over.
const DefaultLeaseTTL = 10 * time.Second

// MinLeaseTTL is the shortest TTL accepted (etcd rounds TTLs to whole
// seconds and has a minimum of its own, 1.5 election timeouts).
const MinLeaseTTL = 2 * time.Second

const defaultDialTimeout = 5 * time.Second

// Config is what the run, login and status commands take for cluster mode.
// Every field maps to one flag (and TOKEN_SENDER_* variable):
//
//	Endpoints          --etcd-endpoints URL[,URL...]  (cluster mode is on when set)
//	Prefix             --etcd-prefix (default DefaultPrefix(app key))
//	CAFile             --etcd-ca-file
//	CertFile, KeyFile  --etcd-cert-file, --etcd-key-file
//	Username           --etcd-username (password: TOKEN_SENDER_ETCD_PASSWORD only)
//	LeaseTTL           --etcd-lease-ttl (default 10s)
//	NodeName           --node-name (default the host name)
//	EncryptionKeyFile  --etcd-encryption-key-file
type Config struct {
	Endpoints         []string
	Prefix            string
	CAFile            string
	CertFile          string
	KeyFile           string
	Username          string
	Password          string
	LeaseTTL          time.Duration
	NodeName          string
	EncryptionKeyFile string
	// DialTimeout bounds each connection attempt (0: 5s).
	DialTimeout time.Duration
}

// Enabled reports whether cluster mode is on (endpoints were given).
func (c Config) Enabled() bool { return len(c.Endpoints) > 0 }

// DefaultPrefix is the key prefix for an app: /token-refresh-sender/ and
// the first 12 hex digits of the app key's SHA-256, so apps sharing an etcd
// do not collide and the app key itself is not written to etcd.
func DefaultPrefix(appKey string) string {
	sum := sha256.Sum256([]byte(appKey))
	return "/token-refresh-sender/" + hex.EncodeToString(sum[:6]) + "/"
}

// WithDefaults fills in the defaults: the prefix from the app key, the
// lease TTL, the node name from hostname, and the password from
// getenv(PasswordEnv).
func (c Config) WithDefaults(appKey string, hostname func() (string, error), getenv func(string) string) (Config, error) {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix(appKey)
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.NodeName == "" {
		h, err := hostname()
		if err != nil {
			return c, fmt.Errorf("--node-name not given and the host name is unknown (%w): pass --node-name", err)
		}
		c.NodeName = h
	}
	if c.Password == "" && getenv != nil {
		c.Password = getenv(PasswordEnv)
	}
	return c, nil
}

// Validate checks the configuration and returns one line naming the flag
// at fault and the fix.
func (c Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("--etcd-endpoints: no endpoint given (example: --etcd-endpoints https://10.0.0.1:2379,https://10.0.0.2:2379)")
	}
	for _, ep := range c.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("--etcd-endpoints: %q is not an etcd client URL; write it as https://host:2379", ep)
		}
	}
	if !strings.HasPrefix(c.Prefix, "/") || !strings.HasSuffix(c.Prefix, "/") || len(c.Prefix) < 3 {
		return fmt.Errorf("--etcd-prefix: %q must start and end with / (example: /token-refresh-sender/myapp/)", c.Prefix)
	}
	if c.LeaseTTL < MinLeaseTTL || c.LeaseTTL > time.Hour {
		return fmt.Errorf("--etcd-lease-ttl: %s is out of range; use between %s and 1h (default %s)", c.LeaseTTL, MinLeaseTTL, DefaultLeaseTTL)
	}
	if c.LeaseTTL%time.Second != 0 {
		return fmt.Errorf("--etcd-lease-ttl: %s is not whole seconds (etcd leases count seconds); use e.g. %s", c.LeaseTTL, c.LeaseTTL.Round(time.Second))
	}
	if c.NodeName == "" || strings.ContainsAny(c.NodeName, "/ \t\n") {
		return fmt.Errorf("--node-name: %q must be non-empty without spaces or slashes", c.NodeName)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("--etcd-cert-file and --etcd-key-file go together: give both for client-certificate auth, or neither")
	}
	if c.Username == "" && c.Password != "" {
		return fmt.Errorf("%s is set but --etcd-username is not: give both", PasswordEnv)
	}
	if c.Username != "" && c.Password == "" {
		return fmt.Errorf("--etcd-username is set but %s is empty: export the password in that variable", PasswordEnv)
	}
	return nil
}

// Cluster is an open connection to the cluster's etcd, with the key layout
// and the record codec. Open it once per process.
type Cluster struct {
	Client   *clientv3.Client
	Prefix   string
	NodeName string
	LeaseTTL time.Duration
	Codec    Codec
	Logger   *slog.Logger
	// Now is the wall clock for record times and events; nil means time.Now.
	Now func() time.Time

	testHookLoginWrite func(val []byte) // called before each login write attempt, with the value it writes
}

// Open validates cfg, loads the encryption key, and creates the etcd
// client (it connects in the background; the first request waits for
// it). Without an encryption key it logs one WARNING that tokens are
// stored in clear.
func Open(cfg Config, logger *slog.Logger) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec := Codec{}
	if cfg.EncryptionKeyFile != "" {
		key, err := LoadKey(cfg.EncryptionKeyFile)
		if err != nil {
			return nil, err
		}
		codec = NewCodec(key)
	} else {
		logger.Warn("Cluster mode without --etcd-encryption-key-file: tokens are stored in etcd in clear, readable by anyone who can read etcd, its snapshots or backups; give every instance the same 32-byte key file to seal them")
	}
	ccfg, err := clientConfig(cfg)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(ccfg)
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return &Cluster{Client: cli, Prefix: cfg.Prefix, NodeName: cfg.NodeName, LeaseTTL: cfg.LeaseTTL, Codec: codec, Logger: logger}, nil
}

// clientConfig is the etcd client's configuration for cfg.
func clientConfig(cfg Config) (clientv3.Config, error) {
	ccfg := clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		Username:    cfg.Username,
		Password:    cfg.Password,
		// The client's own zap logs would bypass ours; failures reach our
		// logger through the errors they cause.
		Logger: zap.NewNop(),
		// A client cut off from the cluster notices within this, and
		// its session then ends with the lease.
		DialKeepAliveTime:    cfg.LeaseTTL / 2,
		DialKeepAliveTimeout: cfg.LeaseTTL / 2,
	}
	if ccfg.DialTimeout == 0 {
		ccfg.DialTimeout = defaultDialTimeout
	}
	if cfg.CAFile != "" || cfg.CertFile != "" || anyHTTPS(cfg.Endpoints) {
		tlsInfo := transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, TrustedCAFile: cfg.CAFile}
		tlsCfg, err := tlsInfo.ClientConfig()
		if err != nil {
			return ccfg, fmt.Errorf("etcd TLS (--etcd-ca-file, --etcd-cert-file, --etcd-key-file): %w", err)
		}
		ccfg.TLS = tlsCfg
	}
	return ccfg, nil
}

func anyHTTPS(eps []string) bool {
	for _, ep := range eps {
		if strings.HasPrefix(ep, "https://") {
			return true
		}
	}
	return false
}

// Close closes the etcd client.
func (c *Cluster) Close() error { return c.Client.Close() }

// TokenKey is the record's key.
func (c *Cluster) TokenKey() string { return c.Prefix + "token" }

// ElectionPrefix is the election's key prefix.
func (c *Cluster) ElectionPrefix() string { return c.Prefix + "election" }

// LoginLockPrefix is the login mutex's key prefix.
func (c *Cluster) LoginLockPrefix() string { return c.Prefix + "login" }

// NodeKey is where node name reports what it last applied.
func (c *Cluster) NodeKey(name string) string { return c.Prefix + "nodes/" + name }

func (c *Cluster) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// ttlSeconds is the lease TTL in etcd's unit (Validate keeps it whole
// seconds, at least MinLeaseTTL).
func (c *Cluster) ttlSeconds() int { return int(c.LeaseTTL / time.Second) }

// retryLimit bounds retries of transient etcd errors (a raft leader change,
// a member going away): long enough to ride out one etcd election.
const retryLimit = 5 * time.Second

// retry runs op until it succeeds, fails for good, or retryLimit passes
// (each attempt bounded by the lease TTL). etcd answers "unavailable" (no
// leader, leader changed, request timed out) while its members elect a new
// raft leader; a request made then is simply made again.
func (c *Cluster) retry(ctx context.Context, op func(ctx context.Context) error) error {
	deadline := c.now().Add(retryLimit)
	for {
		actx, cancel := context.WithTimeout(ctx, c.LeaseTTL)
		err := op(actx)
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil || c.now().After(deadline) {
			return err
		}
		if !pause(ctx, retryPause/10) {
			return err
		}
	}
}

// transient reports whether err is etcd's "unavailable" (worth retrying).
func transient(err error) bool {
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable
	}
	return status.Code(err) == codes.Unavailable
}

// ReadRecord returns the current record (ok false when there is none).
func (c *Cluster) ReadRecord(ctx context.Context) (rec Record, ok bool, err error) {
	var resp *clientv3.GetResponse
	err = c.retry(ctx, func(ctx context.Context) (err error) {
		resp, err = c.Client.Get(ctx, c.TokenKey())
		return err
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("read token record from etcd: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return Record{}, false, nil
	}
	rec, err = c.Codec.Decode(c.TokenKey(), resp.Kvs[0].Value)
	if err != nil {
		return Record{}, false, err
	}
	rec.ModRevision = resp.Kvs[0].ModRevision
	return rec, true, nil
}
