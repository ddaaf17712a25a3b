// Package fakeschwab is a faithful stand-in for Charles Schwab's OAuth
// endpoints, for tests and for the product's demo command.
//
// It enforces what the real service enforces, as far as public clients have
// observed it: HTTP Basic client authentication, the two grant types, a
// single-use authorization code that lives about 30 seconds, an exact match
// of the registered callback URL, a 7-day refresh token that a new login
// supersedes, and Schwab's own error bodies. On top of that it can inject the
// faults seen in the wild (CDN "Access Denied" pages, rate limiting, 5xx,
// connection resets, truncated JSON, latency) so the daemon's retry logic
// can be exercised over real HTTPS.
//
// All time comes from Config.Now, so tests can move a fake clock to expire
// codes and tokens without sleeping.
package fakeschwab
