package sim

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/reason"
)

// httpBrokerage drives a running Kabuto (kabuto serve or kabuto demo)
// through its public API: brokerage actions under /api/v1/accounts with the
// customer's context in X-Kabuto-* headers, and the front door's sign-in
// and factor records through POST /api/v1/events.
//
// Given several nodes of a cluster, it spreads the customers over them:
// each customer sticks to the node of the highest rendezvous hash of its
// account and the node's URL, and moves to the next when that node stops
// answering (a connection refused or cut, not an HTTP error), as a
// brokerage's load balancer would. A retry on another node is safe: every
// mutating call carries its idempotency key, and a record id is decided
// once in the cluster.
type httpBrokerage struct {
	nodes []string // base URLs
	down  []atomic.Bool
	key   string
	c     *http.Client

	// challenges holds the step-up challenge of each action the server
	// asked to confirm, by the action's binding, until it is sent back
	// once with the step-up.
	mu         sync.Mutex
	challenges map[string]string
}

// parseTargets splits --target's comma-separated base URLs.
func parseTargets(s string) ([]string, error) {
	var out []string
	for t := range strings.SplitSeq(s, ",") {
		t = strings.TrimRight(strings.TrimSpace(t), "/")
		u, err := url.Parse(t)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--target %q: want http://HOST:PORT, or several separated by commas", t)
		}
		if slices.Contains(out, t) {
			return nil, fmt.Errorf("--target %q: named twice", t)
		}
		out = append(out, t)
	}
	return out, nil
}

func newHTTPBrokerage(targets []string, key string) *httpBrokerage {
	return &httpBrokerage{nodes: targets, down: make([]atomic.Bool, len(targets)), key: key, c: &http.Client{Timeout: 30 * time.Second}}
}

// order returns the nodes in the order account tries them: its own node
// first (rendezvous hashing, so that a node leaving moves only its own
// customers), then the others.
func (h *httpBrokerage) order(account string) []int {
	idx := make([]int, len(h.nodes))
	score := make([]uint64, len(h.nodes))
	for i, n := range h.nodes {
		f := fnv.New64a()
		f.Write([]byte(account))
		f.Write([]byte{0})
		f.Write([]byte(n))
		idx[i], score[i] = i, mix64(f.Sum64())
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(score[b], score[a]) })
	return idx
}

// mix64 spreads the bits of an FNV hash (splitmix64's finaliser).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// send sends a request of account's to its node, or, when that node does
// not answer at all, to the next live one.
func (h *httpBrokerage) send(ctx context.Context, account string, mk func(base string) (*http.Request, error)) (*http.Response, error) {
	var last error
	order := h.order(account)
	for k, i := range order {
		if h.down[i].Load() && k < len(order)-1 {
			continue
		}
		req, err := mk(h.nodes[i])
		if err != nil {
			return nil, err
		}
		resp, err := h.c.Do(req)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil || len(h.nodes) == 1 {
			return nil, err
		}
		h.down[i].Store(true) // gone: its customers move on
		last = err
	}
	return nil, last
}

func (h *httpBrokerage) do(ctx context.Context, method, path string, a *broker.Actor, idem string, body, out any) (int, error) {
	return h.doFor(ctx, "", method, path, a, idem, body, out)
}

// doFor is do on account's node.
func (h *httpBrokerage) doFor(ctx context.Context, account, method, path string, a *broker.Actor, idem string, body, out any) (int, error) {
	var data []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		data = b
	}
	resp, err := h.send(ctx, account, func(base string) (*http.Request, error) {
		var rd io.Reader
		if data != nil {
			rd = bytes.NewReader(data)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return nil, err
		}
		h.headers(req, a, body != nil, idem)
		return req, nil
	})
	if a != nil && a.StepUp != nil {
		// The challenge is sent once: a node answered it.
		h.mu.Lock()
		delete(h.challenges, a.StepUp.Binding)
		h.mu.Unlock()
	}
	if err != nil {
		return 0, err
	}
	return h.answer(resp, method, path, out)
}

// headers sets a request's key, idempotency and customer context.
func (h *httpBrokerage) headers(req *http.Request, a *broker.Actor, body bool, idem string) {
	req.Header.Set("Authorization", "Bearer "+h.key)
	if body {
		req.Header.Set("Content-Type", "application/json")
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	if a != nil {
		req.Header.Set("X-Kabuto-Client-IP", a.IP)
		req.Header.Set("X-Kabuto-ASN", strconv.FormatInt(a.ASN, 10))
		req.Header.Set("X-Kabuto-Country", a.Country)
		req.Header.Set("X-Kabuto-Device", a.Device)
		req.Header.Set("X-Kabuto-Session", a.Session)
		req.Header.Set("X-Kabuto-UA", a.UA)
		req.Header.Set("X-Kabuto-Channel", a.Channel)
		if a.StepUp != nil {
			// The front door's step-up for this very action, with the
			// challenge the server issued for it (kept for a retry
			// on another node until it is answered).
			h.mu.Lock()
			c := h.challenges[a.StepUp.Binding]
			h.mu.Unlock()
			req.Header.Set("X-Kabuto-Step-Up", a.StepUp.Factor+":"+c)
		}
	}
}

// answer reads a response into out or an error.
func (h *httpBrokerage) answer(resp *http.Response, method, path string, out any) (int, error) {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode == http.StatusAccepted {
		var held struct {
			Held    json.RawMessage `json:"held"`
			Error   string          `json:"error"`
			Message string          `json:"message"`
		}
		if json.Unmarshal(data, &held) == nil && held.Error != "" {
			if out != nil && len(held.Held) > 0 {
				json.Unmarshal(held.Held, out)
			}
			return resp.StatusCode, &reason.Error{Status: resp.StatusCode, Code: held.Error, Message: held.Message}
		}
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
			Binding string `json:"binding"`
			StepUp  struct {
				Challenge string `json:"challenge"`
			} `json:"step_up"`
			Decision *event.Decision `json:"decision"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			return resp.StatusCode, fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
		}
		if e.StepUp.Challenge != "" && e.Binding != "" {
			h.mu.Lock()
			if h.challenges == nil {
				h.challenges = map[string]string{}
			}
			h.challenges[e.Binding] = e.StepUp.Challenge
			h.mu.Unlock()
		}
		return resp.StatusCode, &reason.Error{Status: resp.StatusCode, Code: e.Error, Message: e.Message, Binding: e.Binding, Decision: e.Decision}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

func acctPath(id string) string { return "/api/v1/accounts/" + url.PathEscape(id) }

func (h *httpBrokerage) PlaceOrder(ctx context.Context, a broker.Actor, account string, req broker.OrderRequest, key string) (*broker.Order, error) {
	var o broker.Order
	_, err := h.doFor(ctx, account, http.MethodPost, acctPath(account)+"/orders", &a, key, req, &o)
	if o.ID == "" {
		return nil, err
	}
	return &o, err
}

func (h *httpBrokerage) Withdraw(ctx context.Context, a broker.Actor, account string, amount int64, key string) (*broker.Withdrawal, error) {
	var wd broker.Withdrawal
	_, err := h.doFor(ctx, account, http.MethodPost, acctPath(account)+"/withdrawals", &a, key, map[string]int64{"amount_jpy": amount}, &wd)
	if wd.ID == "" {
		return nil, err
	}
	return &wd, err
}

func (h *httpBrokerage) ChangeBank(ctx context.Context, a broker.Actor, account, bank, key string) (*broker.Change, error) {
	var c broker.Change
	_, err := h.doFor(ctx, account, http.MethodPut, acctPath(account)+"/bank", &a, key, map[string]string{"bank": bank}, &c)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func (h *httpBrokerage) ChangeContact(ctx context.Context, a broker.Actor, account, field, value, key string) (*broker.Change, error) {
	var c broker.Change
	_, err := h.doFor(ctx, account, http.MethodPut, acctPath(account)+"/contact", &a, key, map[string]string{"field": field, "value": value}, &c)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func (h *httpBrokerage) Account(ctx context.Context, id string) (*broker.Account, error) {
	var a broker.Account
	if _, err := h.doFor(ctx, id, http.MethodGet, acctPath(id), nil, "", nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

func (h *httpBrokerage) Halts(ctx context.Context) (map[string]string, error) {
	var out struct {
		Halts map[string]string `json:"halts"`
	}
	_, err := h.do(ctx, http.MethodGet, "/api/v1/halts", nil, "", nil, &out)
	return out.Halts, err
}

func (h *httpBrokerage) Decide(ctx context.Context, r *event.Record) (event.Decision, error) {
	var out struct {
		Decisions []event.Decision `json:"decisions"`
	}
	body := r.AppendJSON(nil)
	resp, err := h.send(ctx, r.Account, func(base string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/events", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+h.key)
		req.Header.Set("Content-Type", "application/json")
		return req, nil
	})
	if err != nil {
		return event.Decision{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return event.Decision{}, fmt.Errorf("POST /api/v1/events: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return event.Decision{}, err
	}
	if len(out.Decisions) != 1 {
		return event.Decision{}, fmt.Errorf("POST /api/v1/events: %d decisions for one record", len(out.Decisions))
	}
	return out.Decisions[0], nil
}

func (h *httpBrokerage) Quote(sym string) (market.Quote, bool) {
	var out struct {
		Instruments []broker.Listing `json:"instruments"`
	}
	if _, err := h.do(context.Background(), http.MethodGet, "/api/v1/instruments?q="+url.QueryEscape(sym), nil, "", nil, &out); err != nil {
		return market.Quote{}, false
	}
	for _, l := range out.Instruments {
		if l.Symbol == sym {
			return market.Quote{Symbol: sym, Last: l.Last, Bid: l.Bid, Ask: l.Ask, PrevClose: l.PrevClose, Low: l.LimitLow, High: l.LimitHigh, DayVolume: l.DayVolume}, true
		}
	}
	return market.Quote{}, false
}

// sameWorld checks that the server runs the market and the book this
// seed and customer count make: the day's plans name its instruments,
// lots and accounts, and a server started with another --seed or
// --customers would take the day's orders for issues it does not list.
func (h *httpBrokerage) sameWorld(ctx context.Context, w *world) error {
	var out struct {
		Instruments []broker.Listing `json:"instruments"`
	}
	if _, err := h.do(ctx, http.MethodGet, "/api/v1/instruments", nil, "", nil, &out); err != nil {
		return err
	}
	listed := make(map[string]broker.Listing, len(out.Instruments))
	for _, l := range out.Instruments {
		listed[l.Symbol] = l
	}
	hint := fmt.Sprintf("start it with 'kabuto demo --seed %d --customers %d', or give this command the server's --seed and --customers", w.seed, w.customers)
	var missing []string
	for _, in := range w.universe {
		if l, ok := listed[in.Symbol]; !ok || l.Lot != in.Lot {
			missing = append(missing, in.Symbol)
		}
	}
	if len(missing) > 0 {
		n := len(missing)
		if n > 3 {
			missing = append(missing[:3], "…")
		}
		return fmt.Errorf("the server's market is not the one seed %d makes: %d of its %d issues are missing there or trade in other lots (%s); %s",
			w.seed, n, len(w.universe), strings.Join(missing, ", "), hint)
	}
	if w.customers > 0 {
		// The book's last customer (population.Generate numbers them).
		last := fmt.Sprintf("C%07d", w.customers)
		if _, err := h.Account(ctx, last); err != nil {
			if e := reason.As(err); e != nil && e.Code == reason.UnknownAccount {
				return fmt.Errorf("the server has no account %s, the last of the %d customers this command plays: %s", last, w.customers, hint)
			}
			return err
		}
	}
	return nil
}

func (h *httpBrokerage) alerts(ctx context.Context) ([]event.Alert, error) {
	var out struct {
		Alerts []event.Alert `json:"alerts"`
	}
	_, err := h.do(ctx, http.MethodGet, "/api/v1/alerts?limit=1000", nil, "", nil, &out)
	return out.Alerts, err
}

// runHTTP plays the day against a running Kabuto as deployed. The server
// keeps its own clock, market and population (kabuto demo --customers N
// --seed S makes the same customers as --customers N --seed S here), so
// there is no history, no ring account, no ablation and no pacing: the
// day's actions are sent in their planned order as fast as the server
// answers. The simulator plays the integrating brokerage: its own sign-in
// is Kabuto's identity service as a library, on a private database, and a
// step-up it verified is passed on in X-Kabuto-Step-Up.
func runHTTP(ctx context.Context, cfg *Config, w *world) (*runResult, error) {
	targets, err := parseTargets(cfg.Target)
	if err != nil {
		return nil, err
	}
	h := newHTTPBrokerage(targets, cfg.APIKey)
	for _, t := range targets { // every node serves the same brokerage
		one := newHTTPBrokerage([]string{t}, cfg.APIKey)
		if _, err := one.Halts(ctx); err != nil {
			return nil, fmt.Errorf("--target %s: %w", t, err)
		}
		if err := one.sameWorld(ctx, w); err != nil {
			return nil, fmt.Errorf("--target %s: %w", t, err)
		}
	}
	v := Variant{Name: "as_deployed", Layers: AllOn}
	r := newRun(ctx, cfg, w, v, &progress{fn: cfg.Progress, total: w.stepsPerRun()})
	r.httpMode = true
	// The brokerage's own sign-in in front of Kabuto's decision API:
	// Kabuto's identity service as a library, on a private database that
	// knows the acting customers.
	db, done, err := tempDB(ctx, cfg, "kabuto-sim-door-")
	if err != nil {
		return nil, err
	}
	defer done()
	if r.fd, err = newFrontDoor(db, r.clock.Now, w.seed, cfg.Log); err != nil {
		return nil, err
	}
	r.clock.set(at(7, 30))
	book := broker.New(broker.Config{DB: db, Exchange: market.NewExchange(w.universe, w.seed, market.Hours{}, at(8, 0)), Clock: r.clock, Log: cfg.Log})
	if err := r.openBook(book); err != nil {
		return nil, err
	}
	r.b = h
	r.g = &stack{run: r, sink: &collectSink{run: r}}
	if err := r.play(); err != nil {
		return nil, err
	}
	res := r.result()
	as, err := h.alerts(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(as) - 1; i >= 0; i-- { // oldest first
		a := as[i]
		res.alerts = append(res.alerts, a)
		if t := r.targets[a.Symbol]; t != nil && a.Action == event.AlertHaltBuys && (t.haltAt.IsZero() || a.Time.Before(t.haltAt)) {
			t.haltAt = a.Time
		}
	}
	return res, nil
}
