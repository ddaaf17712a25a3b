package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/internal/testproc"
	"github.com/schwabtools/token-refresh-sender/schwab"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// runInProcess runs the command line in this process and returns stdout,
// stderr and the exit code.
func runInProcess(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &process{out: &out, err: &errOut, in: strings.NewReader(""), schwabHTTP: schwab.NewHTTPClient(nil)})
	return out.String(), errOut.String(), code
}

// envName is the variable the README promises for a flag: TOKEN_SENDER_<FLAG>
// for the shared flags and run's, TOKEN_SENDER_<COMMAND>_<FLAG> for the
// other commands' own flags.
func envName(command, flag string) string {
	name := flag
	if command != "" && command != "run" {
		name = command + "_" + flag
	}
	return "TOKEN_SENDER_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Every flag of every command has its environment variable, named by the
// rule above (--help and --version excepted: they are actions).
func TestCLI_everyFlagHasEnv(t *testing.T) {
	var cli CLI
	parser, err := newParser(&cli, &process{out: &bytes.Buffer{}, err: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	check := func(command string, flags []*kong.Flag) {
		for _, f := range flags {
			if f.Name == "help" || f.Name == "version" {
				continue
			}
			checked++
			want := envName(command, f.Name)
			if len(f.Envs) != 1 || f.Envs[0] != want {
				t.Errorf("%s --%s: env %v, want [%s]", command, f.Name, f.Envs, want)
			}
		}
	}
	check("", parser.Model.Flags)
	for _, cmd := range parser.Model.Children {
		check(cmd.Name, cmd.Flags)
	}
	if checked < 25 {
		t.Errorf("checked only %d flags: the walk missed some", checked)
	}
}

// A comma is part of a path; several bots are several --socket flags, or
// lines in TOKEN_SENDER_SOCKET.
func TestGlobals_socketsAreNeverSplitOnCommas(t *testing.T) {
	cli := mustParse(t, "status", "--socket", "/tmp/a,b.sock", "--socket", "tcp://127.0.0.1:9999")
	if got := cli.Globals.sockets(); len(got) != 2 || got[0] != "/tmp/a,b.sock" || got[1] != "tcp://127.0.0.1:9999" {
		t.Errorf("sockets = %q", got)
	}
	targets, err := cli.Globals.targets()
	if err != nil || len(targets) != 2 || targets[0].String() != "/tmp/a,b.sock" {
		t.Errorf("targets = %v, %v", targets, err)
	}

	t.Setenv("TOKEN_SENDER_SOCKET", "/tmp/c,d.sock\n/run/bot:1.sock\n")
	cli = mustParse(t, "status")
	if got := cli.Globals.sockets(); len(got) != 2 || got[0] != "/tmp/c,d.sock" || got[1] != "/run/bot:1.sock" {
		t.Errorf("from TOKEN_SENDER_SOCKET: sockets = %q", got)
	}
	if got := cli.Globals.socketList(); got != "/tmp/c,d.sock, /run/bot:1.sock" {
		t.Errorf("socketList = %q", got)
	}

	t.Setenv("TOKEN_SENDER_SOCKET", "\n")
	cli = mustParse(t, "status")
	if _, err := cli.Globals.targets(); err == nil || !strings.Contains(err.Error(), "give at least one bot socket") {
		t.Errorf("no socket at all: %v", err)
	}
}

// The exit code of every kind of outcome: 0 success, 1 runtime failure,
// 2 usage error; status: 3 on every usage error.
func TestRun_exitCodes(t *testing.T) {
	dir := testproc.ShortDir(t)
	missing := filepath.Join(dir, "missing")
	noLog := []string{"--log-file", ""}
	tests := []struct {
		name string
		args []string
		code int
		want string // in stdout+stderr
	}{
		{"version", []string{"version"}, 0, "token-refresh-sender "},
		{"--version", []string{"--version"}, 0, "token-refresh-sender "},
		{"--help", []string{"--help"}, 0, "Shared flags (every command):"},
		{"help", []string{"help"}, 0, "Commands:"},
		{"help status", []string{"help", "status"}, 0, "Usage: token-refresh-sender status"},

		{"unknown command", []string{"stauts"}, 2, `unknown command "stauts", did you mean "status"?`},
		{"help unknown command", []string{"help", "refrsh"}, 2, `did you mean "refresh"?`},
		{"unknown flag", []string{"refresh", "--bogus"}, 2, "unknown flag --bogus"},
		{"bad enum", []string{"send", "--log-level", "loud"}, 2, "--log-level"},
		{"bad duration", []string{"run", "--interval", "soon"}, 2, "--interval"},
		{"interval too short", append([]string{"refresh", "--interval", "0s"}, noLog...), 2, "--interval 0s is too short"},
		{"remote socket", append([]string{"send", "--socket", "tcp://10.0.0.5:1"}, noLog...), 2, "only loopback"},
		{"listen remote socket", []string{"listen", "--socket", "tcp://10.0.0.5:1"}, 2, "only loopback"},
		{"login timeout", append([]string{"login", "--timeout", "0s"}, noLog...), 2, "--timeout"},
		{"demo cycles", []string{"demo", "--cycles=-1"}, 2, "--cycles must be >= 0"},
		{"demo refuses --config", []string{"demo", "--config", "x.yaml"}, 2, "demo: --config (or TOKEN_SENDER_CONFIG) is not used by the demo"},
		{"demo refuses --token-file", []string{"demo", "--token-file", "x.json"}, 2, "never touches yours"},
		{"demo refuses --interval", []string{"demo", "--interval", "1m"}, 2, "use the demo's --every"},
		{"metrics addr", append([]string{"run", "--metrics-addr", "0.0.0.0:9464"}, noLog...), 2, "--metrics-addr"},

		{"status unknown flag", []string{"status", "--bogus"}, 3, "unknown flag --bogus"},
		{"status flag before command", []string{"--bogus", "status"}, 3, "unknown flag --bogus"},
		{"status bad enum", []string{"status", "--log-format", "xml"}, 3, "--log-format"},
		{"status remote socket", []string{"status", "--socket", "tcp://10.0.0.5:1"}, 3, "only loopback"},
		{"status no socket", []string{"status", "--socket", ""}, 3, "give at least one bot socket"},

		{"refresh without app config", append([]string{"refresh", "--config", missing}, noLog...), 1, "App config file not found"},
		{"send without token file", append([]string{"send", "--token-file", missing, "--socket", filepath.Join(dir, "b.sock")}, noLog...), 1, "Token file not found"},
		{"run without app config", append([]string{"run", "--config", missing, "--socket", filepath.Join(dir, "b.sock")}, noLog...), 1, "App config file not found"},
		{"status without token file", []string{"status", "--token-file", missing}, 2, "CRITICAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runInProcess(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("output lacks %q:\n%s%s", tt.want, stdout, stderr)
			}
		})
	}
}

// The demo refuses the user's paths from the environment too: it would
// otherwise silently ignore them.
func TestDemo_refusesPathsFromTheEnvironment(t *testing.T) {
	t.Setenv("TOKEN_SENDER_TOKEN_FILE", "/home/trader/configs/schwab_tokens.json")
	_, stderr, code := runInProcess(t, "demo", "--cycles", "1")
	if code != 2 || !strings.Contains(stderr, "demo: --token-file (or TOKEN_SENDER_TOKEN_FILE)") {
		t.Errorf("exit %d, want 2 naming the variable:\n%s", code, stderr)
	}
}

// The demo honours --socket and --log-file, and says where its token file
// and bot socket are.
func TestDemo_honoursSocketAndLogFile(t *testing.T) {
	dir := testproc.ShortDir(t)
	sock := filepath.Join(dir, "my,bot.sock")
	logFile := filepath.Join(dir, "demo.log")
	stdout, stderr, code := runInProcess(t, "demo", "--cycles", "1", "--socket", sock, "--log-file", logFile)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	tokenFile := regexp.MustCompile(`INFO: Token file: (\S+)`).FindStringSubmatch(stdout)
	if tokenFile == nil || !strings.Contains(tokenFile[1], "trs-demo") {
		t.Errorf("demo does not say where its token file is:\n%s", stdout)
	}
	for _, want := range []string{
		"Stand-in trading bot listening on " + sock,
		"Socket path: " + sock,
		"[bot] Received token I0.",
		"Token successfully sent to trading bot",
		"token-refresh-sender status --token-file ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	logged, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(logged), "Token Refresh Sender Stopped") {
		t.Errorf("--log-file %s not honoured: %q, %v", logFile, logged, err)
	}
	if _, err := os.Stat(tokenFile[1]); !os.IsNotExist(err) {
		t.Errorf("sandbox %s not removed on exit (%v)", tokenFile[1], err)
	}
}

// --help shows every default, even behind a placeholder, and lists a
// command's own flags before the shared ones.
func TestHelp_showsDefaultsAndOwnFlagsFirst(t *testing.T) {
	stdout, _, code := runInProcess(t, "demo", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	stdout = strings.Join(strings.Fields(stdout), " ") // undo the wrapping
	for _, want := range []string{"Default: configs/schwab_app_config.yaml.", "Default: configs/schwab_tokens.json.",
		"Default: /tmp/bigbrother_token.sock.", "Default: logs/token_refresh_sender.log.", "--interval=25m", "--cycles=0"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help lacks %q:\n%s", want, stdout)
		}
	}
	own, shared := strings.Index(stdout, "--cycles"), strings.Index(stdout, "Shared flags (every command):")
	if own < 0 || shared < 0 || own > shared || strings.Index(stdout, "--config") < shared {
		t.Errorf("own flags are not listed before the shared group:\n%s", stdout)
	}
}

func TestLogLevel_warnIsAccepted(t *testing.T) {
	for _, level := range []string{"warn", "warning"} {
		if cli := mustParse(t, "status", "--log-level", level); cli.LogLevel != level {
			t.Errorf("--log-level %s parsed as %q", level, cli.LogLevel)
		}
		if _, _, _, err := (&Globals{LogLevel: level, LogFormat: "text", LogMaxSize: 1}).logger(&bytes.Buffer{}); err != nil {
			t.Errorf("--log-level %s: %v", level, err)
		}
	}
}

func TestSuggest(t *testing.T) {
	cli := CLI{}
	parser, err := newParser(&cli, &process{out: &bytes.Buffer{}, err: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	for word, want := range map[string]string{"stats": `"status"`, "refrsh": `"refresh"`, "r": `"run" or "refresh"`, "sned": `"send"`, "xyzzy": "", "lgin": `"login"`} {
		if got := suggest(parser, word); got != want {
			t.Errorf("suggest(%q) = %q, want %q", word, got, want)
		}
	}
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"", "abc", 3}, {"abc", "", 3}, {"status", "stauts", 2}, {"send", "send", 0}, {"kitten", "sitting", 3}} {
		if got := editDistance(tt.a, tt.b); got != tt.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.d)
		}
	}
}

// refresh, send and status in-process against fakeschwab and a real bot
// socket: the one-shot commands' wiring.
func TestOneShotCommandsInProcess(t *testing.T) {
	s := newWireSandbox(t)
	bot := startReceiver(t, filepath.Join(s.dir, "bot.sock"))
	common := []string{"--config", s.config, "--token-file", s.tokenFile, "--log-file", "", "--socket", filepath.Join(s.dir, "bot.sock")}
	runFake := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := run(append(args, common...), &process{out: &out, err: &errOut, in: strings.NewReader(""), schwabHTTP: schwab.NewHTTPClient(s.srv.RootCAs)})
		return out.String() + errOut.String(), code
	}

	out, code := runFake("refresh")
	if code != 0 || !strings.Contains(out, "✅ Token refresh successful!") || !strings.Contains(out, "   Access token: I0.") {
		t.Fatalf("refresh: exit %d\n%s", code, out)
	}
	refreshed := (<-bot).AccessToken
	saved, err := tokenfile.Load(s.tokenFile)
	if err != nil || saved.Token().AccessToken != refreshed || refreshed == s.login.AccessToken {
		t.Errorf("refresh: the bot and the file disagree or hold the old token (%v)", err)
	}

	if out, code := runFake("send"); code != 0 || !strings.Contains(out, "Sending token from "+s.tokenFile) {
		t.Errorf("send: exit %d\n%s", code, out)
	}
	if got := (<-bot).AccessToken; got != refreshed {
		t.Errorf("send delivered %s, want the saved token", tokensender.Redact(got))
	}
	if out, code := runFake("status"); code != 0 || !strings.Contains(out, "accepting connections") {
		t.Errorf("status: exit %d\n%s", code, out)
	}

	s.fake.RevokeAll()
	if out, code := runFake("refresh"); code != 1 || !strings.Contains(out, "❌ Token refresh failed") {
		t.Errorf("refresh with a revoked token: exit %d, want 1\n%s", code, out)
	}
	if s.fake.Stats().Refreshes < 1 {
		t.Error("refresh never reached Schwab")
	}
	for _, secret := range []string{testAppSecret, refreshed, s.login.RefreshToken} {
		if strings.Contains(out, secret) {
			t.Errorf("output holds a secret")
		}
	}
}

// --refresh-token-lifetime defaults to the one constant, written 168h in
// --help.
func TestGlobals_refreshTokenLifetimeDefault(t *testing.T) {
	cli := mustParse(t, "status")
	if cli.Globals.RefreshTokenLifetime != tokensender.RefreshTokenLifetime {
		t.Errorf("RefreshTokenLifetime = %v, want %v", cli.Globals.RefreshTokenLifetime, tokensender.RefreshTokenLifetime)
	}
	var out bytes.Buffer
	var c CLI
	parser, err := newParser(&c, &process{out: &out, err: &out})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range parser.Model.Flags {
		if f.Name == "refresh-token-lifetime" {
			found = true
			if f.Default != "168h" {
				t.Errorf("--refresh-token-lifetime default %q, want 168h", f.Default)
			}
		}
	}
	if !found {
		t.Error("no --refresh-token-lifetime flag")
	}
}
