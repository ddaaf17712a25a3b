// Package unit ships the systemd template unit token-refresh-sender@.service
// (see README.md) and the tests that check it. It has no Go code of its own.
package unit
