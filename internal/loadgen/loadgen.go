// Package loadgen is a load generator for a running Kabuto server: it sends
// batches of customer actions to POST /api/v1/events (integration mode)
// from a number of connections, or, as the baseline, GET /healthz, and
// measures what the server gave: decisions per second and the latency of
// every request, from which it reports the median, the 99th and the 99.9th
// percentile and the worst.
//
// It runs in the process that calls it; `kabuto loadtest` runs it as a
// process of its own, so that the server's figures are those of a load
// generator on the same machine, not one sharing the server's Go runtime.
//
// Two ways to load. Closed loop (Rate 0): every connection sends its next
// request as soon as the last one is answered, so the server runs flat out
// and the latency includes the queue that builds at saturation. Open loop
// (Rate > 0): requests are due on a fixed schedule, as an order gateway's
// traffic arrives whether or not the server kept up, and each is sent on
// whichever connection is free, as an HTTP client's connection pool does.
// A request that had to wait because the server held every connection is
// timed from when it was due, not from when it could be sent, so a stall
// counts in full for every request it delayed (no coordinated omission);
// a request sent on time is timed from its send.
package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
)

// Config says what load to send.
type Config struct {
	// Target is the server's base URL, such as http://127.0.0.1:8080.
	Target string
	// Key is an API key with the events scope (unused by Healthz).
	Key string
	// Healthz sends GET /healthz instead of records: the baseline of what
	// the HTTP server and the machine give without the guard.
	Healthz bool
	// Batch is the number of records per request (JSON array; 1 sends one
	// record object). Healthz ignores it.
	Batch int
	// Clients is the number of connections, each with one request in
	// flight at a time.
	Clients int
	// Duration is how long to send, after Warmup. Requests, when above
	// zero, replaces it with a fixed number of requests.
	Duration time.Duration
	// Requests, when above zero, is the exact number of measured requests.
	Requests int
	// Warmup is sent first and not measured (the server's profiles and
	// its database warm up; the connections open).
	Warmup time.Duration
	// Rate, when above zero, is the offered load in decisions per second
	// (requests per second for Healthz), sent on a fixed schedule (open
	// loop). Zero sends as fast as the server answers (closed loop).
	Rate float64
	// Accounts is the number of distinct customer accounts the records
	// spread over (default 10,000).
	Accounts int
	// RunID starts every record id, so that runs against one server never
	// repeat an id (a repeated id would be a cheaper write). Default:
	// random.
	RunID string
	// Progress, when set, is called about four times a second while the
	// measured part runs.
	Progress func(Progress)
	// Client is the HTTP client to use (default: one with a connection
	// per client and no proxy).
	Client *http.Client
	// Clock measures the run and its latencies (default clock.Mono, whose
	// readings are monotonic).
	Clock clock.Clock
}

// Progress is the state of a run in flight.
type Progress struct {
	Elapsed   time.Duration // since the measured part began
	Requests  int64         // measured requests answered so far
	Decisions int64         // decisions in them
	Done      float64       // fraction of the run done, 0 to 1
}

// Result is what a run measured.
type Result struct {
	// Requests and Decisions were answered in the measured part (Decisions
	// is Requests for Healthz).
	Requests, Decisions int64
	// Elapsed is the length of the measured part.
	Elapsed time.Duration
	// P50, P99, P999 and Max are request latencies, to the last byte of
	// the answer: from the send, or, in the open loop, from when the
	// request was due if the server held its connection past that.
	P50, P99, P999, Max time.Duration
	// Actions counts the decisions by action (allow, challenge, hold,
	// deny); empty for Healthz.
	Actions map[string]int64
	// Late is the number of requests sent more than a millisecond after
	// they were due (open loop only): the server, or the generator, did
	// not keep up with Rate.
	Late int64
}

// PerSecond is decisions (requests, for Healthz) per second.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Decisions) / r.Elapsed.Seconds()
}

// StatusError is a request the server refused or failed: the run stops at
// the first one.
type StatusError struct {
	Status  int    // HTTP status
	Code    string // the API's error code, when the body had one
	Message string // the API's message, or the start of the body
}

func (e *StatusError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("server answered %d: %s", e.Status, e.Message)
}

// Unauthorized reports whether the server refused the API key.
func (e *StatusError) Unauthorized() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

// Validate checks c and fills in defaults. An error starts with the name
// of the field at fault, as `kabuto loadtest` spells its flag.
func (c *Config) Validate() error {
	if c.Target == "" {
		return errors.New("target: missing: give the server's base URL, such as http://127.0.0.1:8080")
	}
	if !strings.HasPrefix(c.Target, "http://") && !strings.HasPrefix(c.Target, "https://") {
		return fmt.Errorf("target %q: want an http:// or https:// URL", c.Target)
	}
	c.Target = strings.TrimRight(c.Target, "/")
	if !c.Healthz {
		if c.Key == "" {
			return errors.New("api-key: missing: give a key with the events scope")
		}
		if c.Batch < 1 || c.Batch > 10000 {
			return fmt.Errorf("batch %d: want 1 to 10000 records per request", c.Batch)
		}
	} else {
		c.Batch = 1
	}
	if c.Clients < 1 || c.Clients > 1024 {
		return fmt.Errorf("clients %d: want 1 to 1024", c.Clients)
	}
	if c.Requests < 0 {
		return fmt.Errorf("requests %d: want 0 (use the duration) or more", c.Requests)
	}
	if c.Requests == 0 && c.Duration <= 0 {
		return fmt.Errorf("duration %v: want above zero, or a number of requests", c.Duration)
	}
	if c.Warmup < 0 {
		return fmt.Errorf("warmup %v: want zero or more", c.Warmup)
	}
	if c.Rate < 0 {
		return fmt.Errorf("rate %v: want 0 (as fast as answered) or more", c.Rate)
	}
	if c.Accounts == 0 {
		c.Accounts = 10000
	}
	if c.Accounts < 1 {
		return fmt.Errorf("accounts %d: want 1 or more", c.Accounts)
	}
	if c.RunID == "" {
		var b [4]byte
		rand.Read(b[:])
		c.RunID = "lt" + hex.EncodeToString(b[:])
	}
	return nil
}

// Run sends the load c describes until it is done, ctx ends or a request
// fails, and returns what it measured. A request the server answers with
// anything but 200, or a network error, stops the run with that error (a
// *StatusError for an HTTP answer). When ctx ends during the measured part,
// Run returns what was measured until then with ctx's error.
func Run(ctx context.Context, c Config) (Result, error) {
	if err := c.Validate(); err != nil {
		return Result{}, err
	}
	if c.Clock == nil {
		c.Clock = clock.Mono{}
	}
	client := c.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			MaxIdleConns: c.Clients, MaxIdleConnsPerHost: c.Clients, MaxConnsPerHost: c.Clients,
			IdleConnTimeout: time.Minute, DisableCompression: true, ForceAttemptHTTP2: false,
		}}
		defer client.CloseIdleConnections()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	g := &gen{cfg: c, client: client, gen: newRecords(c)}
	if !c.Healthz {
		// The instruments first, as a brokerage's integration sends its
		// reference data: the guard and the watchtower know their prices
		// and volumes before the first order names them.
		if _, err := g.post(ctx, g.gen.instruments(), 0, new(bytes.Buffer)); err != nil {
			return Result{}, err
		}
	}
	if c.Warmup > 0 {
		if err := g.phase(ctx, cancel, false, c.Warmup, 0); err != nil {
			return Result{}, err
		}
	}
	err := g.phase(ctx, cancel, true, c.Duration, c.Requests)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return Result{}, err
	}
	return g.result(), err
}

type gen struct {
	cfg    Config
	client *http.Client
	gen    *records

	mu      sync.Mutex
	lat     []time.Duration
	actions map[string]int64
	late    int64
	start   time.Time
	elapsed time.Duration

	requests, decisions atomic.Int64
}

// phase runs the clients for d (or n requests when n > 0). Only a
// measured phase keeps latencies.
func (g *gen) phase(ctx context.Context, cancel context.CancelCauseFunc, measured bool, d time.Duration, n int) error {
	var slot atomic.Int64 // the next request's number
	now := g.cfg.Clock.Now
	start := now()
	end := start.Add(d)
	if n > 0 {
		end = time.Time{}
	}
	var interval time.Duration
	if g.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(g.cfg.Batch) / g.cfg.Rate)
	}
	if measured {
		g.start = start
		g.actions = map[string]int64{}
	}
	stopProgress := make(chan struct{})
	var progressDone sync.WaitGroup
	if measured && g.cfg.Progress != nil {
		progressDone.Go(func() {
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
				}
				el := now().Sub(start)
				p := Progress{Elapsed: el, Requests: g.requests.Load(), Decisions: g.decisions.Load()}
				if n > 0 {
					p.Done = float64(p.Requests) / float64(n)
				} else {
					p.Done = min(1, el.Seconds()/d.Seconds())
				}
				g.cfg.Progress(p)
			}
		})
	}
	var wg sync.WaitGroup
	for range g.cfg.Clients {
		wg.Go(func() {
			var lat []time.Duration
			actions := map[string]int64{}
			var late int64
			var body []byte
			var answer bytes.Buffer
			for ctx.Err() == nil {
				// The next request of all: in the open loop, the next on
				// the schedule, taken by whichever connection is free, as
				// an HTTP client's pool of connections does.
				i := slot.Add(1) - 1
				if n > 0 && i >= int64(n) {
					break
				}
				due := start.Add(time.Duration(i) * interval)
				if n == 0 && (interval > 0 && !due.Before(end) || interval == 0 && !now().Before(end)) {
					break
				}
				body = g.body(body[:0])
				from := now()
				if interval > 0 {
					if wait := due.Sub(from); wait > 0 {
						// The connection was free before the request was
						// due: time runs from the send, so that the
						// timer's lateness (a millisecond or so) is not
						// counted against the server.
						select {
						case <-time.After(wait):
						case <-ctx.Done():
						}
						from = now()
					} else {
						// The server held every connection past the due
						// time: the wait counts.
						from = due
						if wait < -time.Millisecond {
							late++
						}
					}
				}
				resp, err := g.do(ctx, body, &answer)
				took := now().Sub(from)
				if err != nil {
					if ctx.Err() == nil {
						cancel(err)
					}
					break
				}
				if measured {
					lat = append(lat, took)
					if !g.cfg.Healthz {
						countActions(resp, actions)
					}
					g.requests.Add(1)
					if g.cfg.Healthz {
						g.decisions.Add(1)
					} else {
						g.decisions.Add(int64(g.cfg.Batch))
					}
				}
			}
			if measured {
				g.mu.Lock()
				g.lat = append(g.lat, lat...)
				for k, v := range actions {
					g.actions[k] += v
				}
				g.late += late
				g.mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stopProgress)
	progressDone.Wait()
	if measured {
		g.elapsed = now().Sub(start)
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// body returns the next request's body, appended to b.
func (g *gen) body(b []byte) []byte {
	if g.cfg.Healthz {
		return b
	}
	if g.cfg.Batch == 1 {
		return g.gen.append(b)
	}
	b = append(b, '[')
	for i := range g.cfg.Batch {
		if i > 0 {
			b = append(b, ',')
		}
		b = g.gen.append(b)
	}
	return append(b, ']')
}

// do sends one request and returns the body of its 200 answer, read into
// answer.
func (g *gen) do(ctx context.Context, body []byte, answer *bytes.Buffer) ([]byte, error) {
	if !g.cfg.Healthz {
		return g.post(ctx, body, g.cfg.Batch, answer)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.cfg.Target+"/healthz", nil)
	if err != nil {
		return nil, err
	}
	return g.send(req, -1, answer)
}

// post sends records to POST /api/v1/events and checks that the answer
// holds a decision for each of the actions customer actions among them.
func (g *gen) post(ctx context.Context, body []byte, actions int, answer *bytes.Buffer) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.cfg.Target+"/api/v1/events", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+g.cfg.Key)
	req.Header.Set("Content-Type", "application/json")
	return g.send(req, actions, answer)
}

// send sends req and returns the body of its 200 answer, read into
// answer, which must hold the given number of decisions (-1: not a
// decision request).
func (g *gen) send(req *http.Request, decisions int, answer *bytes.Buffer) ([]byte, error) {
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, err
	}
	answer.Reset()
	_, err = answer.ReadFrom(resp.Body)
	out := answer.Bytes()
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp.StatusCode, out)
	}
	if decisions >= 0 {
		if got := bytes.Count(out, []byte(`{"event":`)); got != decisions {
			return nil, fmt.Errorf("server answered %d decisions to a batch of %d customer actions: %.200s", got, decisions, out)
		}
	}
	return out, nil
}

func statusError(status int, body []byte) error {
	var e struct{ Error, Message string }
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return &StatusError{Status: status, Code: e.Error, Message: e.Message}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return &StatusError{Status: status, Message: msg}
}

// countActions counts the decisions of a response by action.
func countActions(resp []byte, into map[string]int64) {
	const key = `"action":"`
	for {
		i := bytes.Index(resp, []byte(key))
		if i < 0 {
			return
		}
		resp = resp[i+len(key):]
		j := bytes.IndexByte(resp, '"')
		if j < 0 {
			return
		}
		switch a := resp[:j]; string(a) { // no allocation for the known ones
		case event.Allow:
			into[event.Allow]++
		case event.Challenge:
			into[event.Challenge]++
		case event.Hold:
			into[event.Hold]++
		case event.Deny:
			into[event.Deny]++
		default:
			into[string(a)]++
		}
		resp = resp[j:]
	}
}

func (g *gen) result() Result {
	lat := g.lat
	slices.Sort(lat)
	r := Result{Requests: g.requests.Load(), Decisions: g.decisions.Load(), Elapsed: g.elapsed, Late: g.late}
	if !g.cfg.Healthz {
		r.Actions = g.actions
	}
	if len(lat) > 0 {
		r.P50, r.P99, r.P999, r.Max = quantile(lat, 0.5), quantile(lat, 0.99), quantile(lat, 0.999), lat[len(lat)-1]
	}
	return r
}

// quantile returns the q-quantile of sorted: the smallest value at or
// above which lies no more than 1-q of the values (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(float64(len(sorted))*q+0.999999999) - 1
	return sorted[max(0, min(len(sorted)-1, i))]
}

// symbols are the instruments orders name: twenty TSE Prime issues of the
// reference market, with their price and average daily volume.
var symbols = []struct {
	symbol string
	price  int64
	adv    int64
}{
	{"7203", 2700, 28e6}, {"6758", 3500, 9e6}, {"8306", 2000, 40e6}, {"9984", 9000, 12e6}, {"9432", 152, 150e6},
	{"7974", 11000, 5e6}, {"8035", 25000, 3e6}, {"6861", 60000, 5e5}, {"9983", 47000, 6e5}, {"6501", 3800, 8e6},
	{"8058", 2700, 9e6}, {"4502", 4200, 4e6}, {"7267", 1500, 12e6}, {"8316", 3700, 10e6}, {"6098", 9000, 4e6},
	{"2914", 4100, 5e6}, {"4661", 3300, 6e6}, {"9101", 5000, 4e6}, {"7011", 2500, 30e6}, {"5401", 3000, 7e6},
}

// records makes the customer actions of a run: a quarter sign-ins (a
// password and an email code), the rest orders of 100 shares, buys and
// sells, market and limit, over twenty large issues, spread over the
// accounts, each account on its own device and home network, each record
// with a run-unique id. Record times advance a millisecond per record from
// the run's start, so that each account acts about every Accounts
// milliseconds of stream time whatever the rate.
type records struct {
	runID    string
	accounts int
	t0       time.Time
	seq      atomic.Int64
}

func newRecords(c Config) *records {
	return &records{runID: c.RunID, accounts: c.Accounts, t0: c.Clock.Now().In(clock.JST).Truncate(time.Second)}
}

// append appends the next record's JSON to b.
func (g *records) append(b []byte) []byte {
	n := g.seq.Add(1)
	var idb, acb [32]byte
	id := string(strconv.AppendInt(append(append(idb[:0], g.runID...), '-'), n, 10))
	a := n % int64(g.accounts)
	acct := string(strconv.AppendInt(append(acb[:0], 'L'), a, 10))
	// A home address on KDDI (AS2516): 100.80.0.0/12 in the built-in table.
	ip := netip.AddrFrom4([4]byte{100, byte(80 + a>>16&15), byte(a >> 8), byte(a)}).String()
	r := event.Record{ID: id, Time: g.t0.Add(time.Duration(n) * time.Millisecond), Account: acct, Session: "s" + acct,
		IP: ip, ASN: 2516, Country: "JP", Device: "d" + acct, UA: "Mozilla/5.0", Channel: event.ChannelWeb}
	if n%4 == 0 {
		r.Type, r.Method, r.Factors, r.OK = event.TypeLogin, "password", []string{"password", "email_otp"}, true
		return r.AppendJSON(b)
	}
	s := symbols[(a+n/int64(g.accounts))%int64(len(symbols))]
	r.Type, r.OrderID, r.Symbol, r.Qty, r.AccountKind = event.TypeOrder, "o"+id, s.symbol, 100, "cash"
	r.Side, r.PriceType, r.ValueJPY = event.SideBuy, event.PriceMarket, 100*s.price
	if n%3 == 0 {
		r.Side = event.SideSell
	}
	if n%5 == 0 {
		r.PriceType, r.LimitPrice = event.PriceLimit, float64(s.price)
	}
	return r.AppendJSON(b)
}

// instruments returns the instrument records of the symbols, as a JSON array.
func (g *records) instruments() []byte {
	b := []byte{'['}
	for i, s := range symbols {
		if i > 0 {
			b = append(b, ',')
		}
		r := event.Record{ID: g.runID + "-instrument-" + s.symbol, Type: event.TypeInstrument, Time: g.t0, Symbol: s.symbol,
			Name: s.symbol, Market: "TSE_PRIME", Currency: "JPY", Price: float64(s.price), PriceJPY: float64(s.price), ADVShares: s.adv, Lot: 100}
		b = r.AppendJSON(b)
	}
	return append(b, ']')
}
