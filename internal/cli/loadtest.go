package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/loadgen"
)

func runLoadtest(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	var c loadgen.Config
	fs.StringVar(&c.Target, "target", "http://127.0.0.1:8080", "base URL of the Kabuto server to load")
	fs.StringVar(&c.Key, "api-key", "", "API key with the events scope (make one with 'kabuto apikey --create NAME --scopes events')")
	fs.BoolVar(&c.Healthz, "healthz", false, "send GET /healthz instead of records: the baseline of the HTTP server and the machine")
	fs.IntVar(&c.Batch, "batch", 20, "customer actions per request (1: one record per request)")
	fs.IntVar(&c.Clients, "clients", 2, "connections, each with one request in flight")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to measure, after the warm-up")
	fs.IntVar(&c.Requests, "requests", 0, "measure exactly this many requests instead of a duration")
	fs.DurationVar(&c.Warmup, "warmup", time.Second, "load sent first and not measured")
	fs.Float64Var(&c.Rate, "rate", 0, "offered load in decisions per second (requests per second with --healthz), on a fixed schedule;\n0 sends as fast as the server answers")
	fs.IntVar(&c.Accounts, "accounts", 10000, "customer accounts the records spread over")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parse(fs, env, args, "Load a running Kabuto with customer actions on POST /api/v1/events (or GET /healthz, the baseline)\n"+
		"from this process, and report decisions per second and request latency (p50, p99, p99.9, max).\n"+
		"A quarter of the records are sign-ins, the rest orders of twenty large issues; every run uses fresh\n"+
		"event ids. The generator runs with GOGC=400 unless GOGC is set, so that its own garbage collection\n"+
		"stays out of the figures."); err != nil {
		return err
	}
	if !c.Healthz && c.Key == "" {
		return usageError{errors.New("give --api-key (or KABUTO_API_KEY), a key with the events scope; or --healthz for the baseline")}
	}
	if err := c.Validate(); err != nil {
		return usageError{fmt.Errorf("--%w", err)}
	}
	what := fmt.Sprintf("POST %s/api/v1/events, batches of %d from %d connections", c.Target, c.Batch, c.Clients)
	if c.Healthz {
		what = fmt.Sprintf("GET %s/healthz from %d connections", c.Target, c.Clients)
	}
	if c.Rate > 0 {
		what += fmt.Sprintf(", %s/s offered", thousands(int64(c.Rate)))
	} else {
		what += ", as fast as answered"
	}
	if c.Requests > 0 {
		what += fmt.Sprintf(", %d requests", c.Requests)
	} else {
		what += fmt.Sprintf(", %v", c.Duration)
	}
	if c.Warmup > 0 {
		what += fmt.Sprintf(" after %v of warm-up", c.Warmup)
	}
	if !*asJSON {
		fmt.Fprintf(env.Stdout, "kabuto loadtest: %s\n", what)
	}
	if os.Getenv("GOGC") == "" {
		// The generator's own collections would land in its figures:
		// make them rare (its heap is a few megabytes).
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	var bar *progressbar.ProgressBar
	if isTerminal(env.Stderr) {
		bar = progressbar.NewOptions(1000, progressbar.OptionSetWriter(env.Stderr), progressbar.OptionSetDescription("warming up"),
			progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(200*time.Millisecond))
		c.Progress = func(p loadgen.Progress) {
			bar.Describe(fmt.Sprintf("%5.1f s  %s/s", p.Elapsed.Seconds(), thousands(int64(float64(p.Decisions)/p.Elapsed.Seconds()))))
			bar.Set(int(p.Done * 1000))
		}
	}
	res, err := loadgen.Run(ctx, c)
	if bar != nil {
		bar.Finish()
	}
	interrupted := err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && res.Requests > 0
	if err != nil && !interrupted {
		return explainLoadError(c, err)
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(loadtestJSON(c, res))
	}
	printLoadResult(env.Stdout, c, res)
	if interrupted {
		fmt.Fprintln(env.Stdout, "  (interrupted: the figures cover the part measured)")
	}
	return nil
}

// explainLoadError says what a failed run means for the person running it.
func explainLoadError(c loadgen.Config, err error) error {
	var se *loadgen.StatusError
	var oe *net.OpError
	switch {
	case errors.As(err, &se) && se.Unauthorized():
		return fmt.Errorf("%s refused the API key (%d %s: %s): give --api-key (or KABUTO_API_KEY), a key with the events scope",
			c.Target, se.Status, se.Code, se.Message)
	case errors.As(err, &se):
		return fmt.Errorf("%s: %w", c.Target, err)
	case errors.As(err, &oe) && oe.Op == "dial":
		return fmt.Errorf("cannot reach %s (is the server running?): %w", c.Target, err)
	}
	return err
}

func printLoadResult(w io.Writer, c loadgen.Config, r loadgen.Result) {
	unit := "decisions"
	if c.Healthz {
		unit = "requests"
	}
	fmt.Fprintf(w, "  requests   %12s in %v\n", thousands(r.Requests), r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  %-9s  %12s   %s/s\n", unit, thousands(r.Decisions), thousands(int64(r.PerSecond())))
	fmt.Fprintf(w, "  latency    p50 %s   p99 %s   p99.9 %s   max %s\n", ms(r.P50), ms(r.P99), ms(r.P999), ms(r.Max))
	if c.Rate > 0 {
		fmt.Fprintf(w, "  late       %d requests sent over 1 ms after they were due (timed from when due)\n", r.Late)
	}
	if len(r.Actions) > 0 {
		var parts []string
		for _, a := range []string{event.Allow, event.Challenge, event.Hold, event.Deny} {
			if n := r.Actions[a]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %s", a, thousands(n)))
			}
		}
		fmt.Fprintf(w, "  actions    %s\n", strings.Join(parts, ", "))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// thousands formats n with thousands separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// loadResult is the --json form of a result.
type loadResult struct {
	Target     string           `json:"target"`
	Healthz    bool             `json:"healthz"`
	Batch      int              `json:"batch"`
	Clients    int              `json:"clients"`
	Rate       float64          `json:"rate"`
	Requests   int64            `json:"requests"`
	Decisions  int64            `json:"decisions"`
	ElapsedS   float64          `json:"elapsed_s"`
	PerSecond  float64          `json:"per_second"`
	P50us      int64            `json:"p50_us"`
	P99us      int64            `json:"p99_us"`
	P999us     int64            `json:"p999_us"`
	MaxUs      int64            `json:"max_us"`
	Late       int64            `json:"late"`
	Actions    map[string]int64 `json:"actions,omitempty"`
	RunID      string           `json:"run_id"`
	WarmupS    float64          `json:"warmup_s"`
	DurationS  float64          `json:"duration_s,omitempty"`
	RequestsIn int              `json:"requests_asked,omitempty"`
}

func loadtestJSON(c loadgen.Config, r loadgen.Result) loadResult {
	return loadResult{Target: c.Target, Healthz: c.Healthz, Batch: c.Batch, Clients: c.Clients, Rate: c.Rate,
		Requests: r.Requests, Decisions: r.Decisions, ElapsedS: r.Elapsed.Seconds(), PerSecond: r.PerSecond(),
		P50us: r.P50.Microseconds(), P99us: r.P99.Microseconds(), P999us: r.P999.Microseconds(), MaxUs: r.Max.Microseconds(),
		Late: r.Late, Actions: r.Actions, RunID: c.RunID, WarmupS: c.Warmup.Seconds(), DurationS: c.Duration.Seconds(), RequestsIn: c.Requests}
}
