// Package launchd ships the macOS launchd agent
// com.schwabtools.token-refresh-sender.plist (see README.md) and the test
// that checks it. It has no Go code of its own.
package launchd
