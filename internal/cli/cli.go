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
	"runtime/debug"
	"syscall"

	"github.com/kabuto-sec/kabuto/internal/config"
)

// command is one subcommand.
type command struct {
	name, summary string
	run           func(ctx context.Context, env *Env, args []string) error
}

// Env is what a command runs with: its output streams.
type Env struct {
	Stdout, Stderr io.Writer
}

func commands() []command {
	return []command{
		{"serve", "run Kabuto: the brokerage API, the guard and the back office", runServe},
		{"demo", "run a demo brokerage with thousands of customers on a fresh embedded database", runDemo},
		{"simulate", "replay the 2025 campaign against Kabuto and score every defence", runSimulate},
		{"replay", "backtest a policy over a recorded stream, in stream time", runReplay},
		{"loadtest", "load a running Kabuto's decision API and report decisions/s and latency", runLoadtest},
		{"policy", "print the built-in policy, or check a policy file", runPolicy},
		{"audit", "verify the audit trail's hash chain and list entries", runAudit},
		{"migrate", "apply database migrations and exit", runMigrate},
		{"apikey", "create or revoke API keys for the brokerage's systems", runAPIKey},
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
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
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

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if rev != "" {
			return "dev-" + rev[:min(12, len(rev))] + dirty
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
	}
	return "dev"
}

func runVersion(_ context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := parse(fs, env, args, "Print the version."); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, "kabuto", version())
	return nil
}
