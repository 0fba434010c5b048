// Package cli is the kabuto command: it parses the command line and runs
// the subcommands (serve, demo, simulate, replay, loadtest, policy, audit,
// migrate, apikey, version). cmd/kabuto only calls Main.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/config"
)

// command is one subcommand.
type command struct {
	name, summary string
	run           func(ctx context.Context, env *Env, args []string) error
}

// Env is what a command runs with: its output streams and its clock.
type Env struct {
	Stdout, Stderr io.Writer
	// Clock tells the time (nil: clock.Real).
	Clock clock.Clock
}

// Now returns the time on env's clock.
func (env *Env) Now() time.Time { return env.clock().Now() }

func (env *Env) clock() clock.Clock {
	if env.Clock == nil {
		return clock.Real{}
	}
	return env.Clock
}

func commands() []command {
	return []command{
		{"serve", "run Kabuto: the brokerage API, the guard and the back office", runServe},
		{"demo", "run a demo brokerage with thousands of customers on a fresh embedded database", runDemo},
		{"simulate", "replay the 2025 campaign against Kabuto and score every defence", runSimulate},
		{"replay", "backtest a policy over a recorded stream, in stream time", runReplay},
		{"genstream", "generate an independent test stream of ordinary customers and an attack day, with its labels", runGenstream},
		{"score", "score a replay's decisions and alerts against a generated stream's labels", runScore},
		{"loadtest", "load a running Kabuto's decision API and report decisions/s and latency", runLoadtest},
		{"policy", "print the built-in policy, or check a policy file", runPolicy},
		{"audit", "verify the audit trail's hash chain and list entries", runAudit},
		{"migrate", "apply database migrations and exit", runMigrate},
		{"apikey", "create, list or revoke API keys for the brokerage's systems", runAPIKey},
		{"analyst", "create, disable and list the back office's analysts (roles analyst, supervisor, admin)", runAnalyst},
		{"check-domain", "check the mail domains' DMARC, SPF, DKIM, BIMI, MTA-STS and TLS-RPT", runCheckDomain},
		{"version", "print the version", runVersion},
	}
}

// Main runs the kabuto command with args (without the program name) until
// it ends or the process is interrupted, and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, stdout, stderr)
}

// Run runs the kabuto command with args until it ends or ctx is done, and
// returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	env := &Env{Stdout: stdout, Stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, env, args[1:])
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			if err != nil {
				fmt.Fprintf(stderr, "kabuto %s: %v\n", c.name, err)
				var ue usageError
				if errors.As(err, &ue) {
					return 2
				}
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "kabuto: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Kabuto: account-takeover defence for online securities brokerages.")
	fmt.Fprintln(w, "\nUsage: kabuto <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'kabuto <command> --help' for a command's flags. Every flag can also be set")
	fmt.Fprintln(w, "as KABUTO_<FLAG> in the environment, or KABUTO_<FLAG>_FILE naming a file that holds it.")
}

// usageError is a mistake on the command line (exit code 2).
type usageError struct{ error }

// parse parses args into fs, then the environment (config.Apply).
func parse(fs *flag.FlagSet, env *Env, args []string, summary string) error {
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stdout, "Usage: kabuto %s [flags]\n\n%s\n\nFlags (each also KABUTO_<NAME>, or KABUTO_<NAME>_FILE):\n", fs.Name(), summary)
		fs.SetOutput(env.Stdout)
		fs.PrintDefaults()
		fs.SetOutput(env.Stderr)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if err := config.Apply(fs); err != nil {
		return usageError{err}
	}
	return nil
}

// Version is the build's version, set with -ldflags "-X …/cli.Version=v1.2.3".
var Version = ""

// build is what the Go toolchain recorded about this binary.
type build struct {
	version, revision, time, goVersion string
	modified                           bool
}

func readBuild(bi *debug.BuildInfo) build {
	b := build{version: Version, goVersion: runtime.Version()}
	if bi == nil {
		return b
	}
	b.goVersion = bi.GoVersion
	if b.version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.time":
			b.time = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

// short is the version in one word, for /healthz and logs.
func (b build) short() string {
	switch {
	case b.version != "":
		return b.version
	case b.revision != "":
		v := "dev-" + b.revision[:min(12, len(b.revision))]
		if b.modified {
			v += "+dirty"
		}
		return v
	}
	return "dev"
}

// long is the version command's text: the module version, the commit it
// was built from and when that was made, and the Go that built it.
func (b build) long() string {
	var sb strings.Builder
	v := b.version
	if v == "" {
		v = "(development build, no module version)"
	}
	fmt.Fprintf(&sb, "kabuto %s\n", v)
	switch {
	case b.revision != "":
		fmt.Fprintf(&sb, "commit %s", b.revision)
		if b.time != "" {
			fmt.Fprintf(&sb, " of %s", b.time)
		}
		if b.modified {
			sb.WriteString(", with uncommitted changes")
		}
		sb.WriteString("\n")
	default:
		sb.WriteString("commit unknown (built outside a git checkout or with -buildvcs=false)\n")
	}
	fmt.Fprintf(&sb, "built with %s for %s/%s\n", b.goVersion, runtime.GOOS, runtime.GOARCH)
	return sb.String()
}

func thisBuild() build {
	bi, _ := debug.ReadBuildInfo()
	return readBuild(bi)
}

func version() string { return thisBuild().short() }

func runVersion(_ context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := parse(fs, env, args, "Print the version: module version, commit and its time, Go version."); err != nil {
		return err
	}
	fmt.Fprint(env.Stdout, thisBuild().long())
	return nil
}
