package launchd

import (
	"encoding/xml"
	"os"
	"strings"
	"testing"
)

const plistFile = "com.schwabtools.token-refresh-sender.plist"

// value is one plist value: a <dict>, <array>, <string>, <integer>,
// <true/> or <false/>.
type value struct {
	XMLName xml.Name
	Text    string  `xml:",chardata"`
	Items   []value `xml:",any"`
}

// dict turns a <dict> into key -> value.
func dict(tb testing.TB, v value) map[string]value {
	tb.Helper()
	if v.XMLName.Local != "dict" {
		tb.Fatalf("want <dict>, got <%s>", v.XMLName.Local)
	}
	out := map[string]value{}
	for i := 0; i+1 < len(v.Items); i += 2 {
		if v.Items[i].XMLName.Local != "key" {
			tb.Fatalf("dict entry %d is <%s>, want <key>", i, v.Items[i].XMLName.Local)
		}
		out[v.Items[i].Text] = v.Items[i+1]
	}
	if len(v.Items)%2 != 0 {
		tb.Fatalf("dict has a key without a value")
	}
	return out
}

func loadAgent(tb testing.TB) map[string]value {
	tb.Helper()
	data, err := os.ReadFile(plistFile)
	if err != nil {
		tb.Fatal(err)
	}
	var doc struct {
		Version string  `xml:"version,attr"`
		Items   []value `xml:",any"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		tb.Fatalf("%s is not well-formed XML: %v", plistFile, err)
	}
	if doc.Version != "1.0" || len(doc.Items) != 1 {
		tb.Fatalf("%s: want one top-level <dict> in <plist version=\"1.0\">", plistFile)
	}
	return dict(tb, doc.Items[0])
}

func TestAgent_runsTheDaemonFromHome(t *testing.T) {
	agent := loadAgent(t)
	if got := agent["Label"].Text; got != "com.schwabtools.token-refresh-sender" {
		t.Errorf("Label %q must match the file name", got)
	}
	args := agent["ProgramArguments"].Items
	if len(args) != 3 || args[0].Text != "/bin/sh" || args[1].Text != "-c" {
		t.Fatalf("ProgramArguments = %v, want /bin/sh -c SCRIPT", args)
	}
	script := args[2].Text
	for _, want := range []string{
		`cd "$HOME/Library/Application Support/token-refresh-sender"`,
		"exec /usr/local/bin/token-refresh-sender run",
		`--log-file "$HOME/Library/Logs/token-refresh-sender/`,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script %q lacks %q", script, want)
		}
	}
	// One processor from the start: the runtime's processors made before
	// main cost private memory for the process's whole life.
	if env := dict(t, agent["EnvironmentVariables"]); env["GOMAXPROCS"].Text != "1" {
		t.Errorf("EnvironmentVariables GOMAXPROCS = %q, want 1", env["GOMAXPROCS"].Text)
	}
	// A path that names one user would make the file someone else's to edit.
	if strings.Contains(script, "/Users/") {
		t.Errorf("script %q names a home directory; use $HOME", script)
	}
}

func TestAgent_restartsOnlyAfterFailure(t *testing.T) {
	agent := loadAgent(t)
	if agent["RunAtLoad"].XMLName.Local != "true" {
		t.Error("RunAtLoad must be true")
	}
	keep := dict(t, agent["KeepAlive"])
	// A clean stop (exit 0) stays stopped; a crash or error exit restarts.
	if keep["SuccessfulExit"].XMLName.Local != "false" {
		t.Error("KeepAlive.SuccessfulExit must be false")
	}
	if got := agent["ProcessType"].Text; got != "Standard" {
		t.Errorf("ProcessType %q: Background agents may have their timers delayed", got)
	}
	if got := agent["Umask"].Text; got != "63" {
		t.Errorf("Umask %q, want 63 (0077): new files private to the user", got)
	}
}
