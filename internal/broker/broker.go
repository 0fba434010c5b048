// Package broker is the reference brokerage Kabuto protects: accounts with
// cash in integer yen and cash, NISA and margin holdings, orders checked
// against the exchange's rules and filled by the simulated exchange,
// withdrawals to the registered bank account only, and bank and contact
// changes. Every state change is one database transaction with a ledger
// entry for every movement of cash or shares; every mutating call takes an
// idempotency key. Before any customer action executes the brokerage emits
// the spec record of the action, asks its Guard, and obeys the decision.
package broker

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kabuto-sec/kabuto/internal/assurance"
	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/guard"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Actor is who acts and from where: the actor context of the spec, taken
// from the request, and the principal the idempotency keys belong to.
type Actor struct {
	Principal string // e.g. "session:…" or "apikey:…"
	Session   string
	IP        string
	ASN       int64
	Country   string
	Device    string
	UA        string
	Channel   string
	// StepUp is a step-up the actor passed for one action, verified by the
	// front door (fresh, used once). It satisfies a challenge of the same
	// or a weaker factor for the action whose Binding it carries.
	StepUp *StepUp
}

// StepUp is proof that the actor just passed a factor for one action.
type StepUp struct {
	Factor  string // event.FactorPhishingResistant or event.FactorMFA
	Binding string // Binding of the action it was made for
}

// Binding returns what a step-up for r commits to: the action's type,
// account and every detail that matters (amount and destination, the
// order's terms, the new bank or contact hash), but not its id or time, so
// a retry of the same action has the same binding and any other action
// has another.
func Binding(r *event.Record) string {
	var s string
	switch r.Type {
	case event.TypeWithdrawal:
		s = fmt.Sprintf("%d|%s", r.AmountJPY, r.BankHash)
	case event.TypeBankChange:
		s = r.BankHash
	case event.TypeContactChange:
		s = r.Field + "|" + r.NewHash
	case event.TypeOrder:
		s = fmt.Sprintf("%s|%s|%d|%s|%v|%s", r.Symbol, r.Side, r.Qty, r.PriceType, r.LimitPrice, r.AccountKind)
	case event.TypeFactorAdd, event.TypeFactorRemove:
		s = r.Factor
	}
	h := sha256.Sum256([]byte(string(r.Type) + "|" + r.Account + "|" + r.Session + "|" + s))
	return hex.EncodeToString(h[:])
}

// Config configures a Broker.
type Config struct {
	DB       *store.DB
	Exchange *market.Exchange
	Guard    guard.Guard // nil: guard.AllowAll
	Clock    guard.Clock // nil: the wall clock
	HashKey  []byte      // keys the contact and bank hashes
	// IDs returns a new unique identifier with the given prefix; nil uses
	// random identifiers.
	IDs func(prefix string) string
	Log *slog.Logger
	// InTx, when set, runs inside the transaction of every record the
	// brokerage stores (actions, refusals, fills, snapshots), so work such
	// as queueing notifications commits or rolls back with the action.
	InTx func(ctx context.Context, tx *sql.Tx, r *event.Record) error
}

// Broker is the reference brokerage.
type Broker struct {
	db    *store.DB
	x     *market.Exchange
	guard guard.Guard
	clock guard.Clock
	key   []byte
	ids   func(string) string
	log   *slog.Logger
	inTx  func(context.Context, *sql.Tx, *event.Record) error
	gate  func(context.Context, string, GateOp) error

	rule    assurance.Rule
	passkey func(ctx context.Context, account string) (bool, error)

	subMu sync.RWMutex
	subs  []func(context.Context, *event.Record)

	tickMu sync.Mutex
}

// New returns a Broker.
func New(c Config) *Broker {
	b := &Broker{db: c.DB, x: c.Exchange, guard: c.Guard, clock: c.Clock, key: c.HashKey, ids: c.IDs, log: c.Log, inTx: c.InTx}
	if b.guard == nil {
		b.guard = guard.AllowAll{}
	}
	if b.clock == nil {
		b.clock = guard.SystemClock{}
	}
	if b.ids == nil {
		b.ids = RandomID
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	return b
}

// GateOp describes an action for the Gate.
type GateOp struct {
	Kind    string // "order", "withdrawal" or "change"
	Side    string // for orders: "buy" or "sell"
	Foreign bool   // for orders: a foreign instrument
}

// SetGate sets what is asked before any action of an account executes,
// whatever the channel (portal, API, integration): the customer's own
// self-lock. An error refuses the action.
func (b *Broker) SetGate(g func(ctx context.Context, account string, op GateOp) error) { b.gate = g }

func (b *Broker) checkGate(ctx context.Context, account string, op GateOp) error {
	if b.gate == nil {
		return nil
	}
	return b.gate(ctx, account, op)
}

// SetStepUpRule makes rule decide which step-up meets a challenge, and
// passkey tell whether an account has a passkey (which the rule needs).
// Unset: a passkey meets every challenge and a code an mfa one.
func (b *Broker) SetStepUpRule(rule assurance.Rule, passkey func(ctx context.Context, account string) (bool, error)) {
	b.rule, b.passkey = rule, passkey
}

// meets reports whether su meets a challenge for asked on r (fails
// closed when the account's passkeys cannot be read).
func (b *Broker) meets(ctx context.Context, asked string, su *StepUp, r *event.Record) bool {
	has := true
	if b.passkey != nil {
		var err error
		if has, err = b.passkey(ctx, r.Account); err != nil {
			b.log.ErrorContext(ctx, "could not read the account's passkeys; refusing a code step-up", "account", r.Account, "err", err)
			has = true
		}
	}
	return b.rule.Meets(asked, su.Factor, r.Type, has, r.Time)
}

// SetGuard replaces the guard asked before every action.
func (b *Broker) SetGuard(g guard.Guard) { b.guard = g }

// Exchange returns the exchange the brokerage trades on.
func (b *Broker) Exchange() *market.Exchange { return b.x }

// Subscribe calls fn with every record the brokerage emits, after the
// record's transaction committed (or, for refused actions, after the
// refusal), in emission order per caller.
func (b *Broker) Subscribe(fn func(context.Context, *event.Record)) {
	b.subMu.Lock()
	b.subs = append(b.subs, fn)
	b.subMu.Unlock()
}

// publish tells the guard of every record that needs no decision (the
// actions were decided already) and then every subscriber.
func (b *Broker) publish(ctx context.Context, recs ...*event.Record) {
	b.subMu.RLock()
	subs := b.subs
	b.subMu.RUnlock()
	for _, r := range recs {
		if !r.Type.Action() {
			b.observe(ctx, r)
		}
		for _, fn := range subs {
			fn(ctx, r)
		}
	}
}

var idSeq atomic.Uint64

// RandomID returns prefix followed by a time-ordered unique identifier.
func RandomID(prefix string) string {
	var r [5]byte
	rand.Read(r[:])
	return fmt.Sprintf("%s%011x%04x%s", prefix, clock.Real{}.Now().UnixMilli(), idSeq.Add(1)&0xffff, hex.EncodeToString(r[:]))
}

// Hash returns the opaque hash of a contact detail or bank account, keyed
// so that it means nothing outside this brokerage. Values are normalised
// (case, spaces and hyphens) first.
func (b *Broker) Hash(kind, value string) string {
	v := strings.ToLower(strings.Join(strings.FieldsFunc(value, func(r rune) bool { return r == ' ' || r == '-' || r == '\u3000' }), ""))
	m := hmac.New(sha256.New, b.key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return kind[:1] + "_" + hex.EncodeToString(m.Sum(nil)[:12])
}

// record returns a customer-action record with the actor context filled in.
func (b *Broker) record(t event.Type, account string, a Actor, now time.Time) *event.Record {
	return &event.Record{
		ID: b.ids("E"), Type: t, Time: now, Account: account,
		Session: a.Session, IP: a.IP, ASN: a.ASN, Country: a.Country, Device: a.Device, UA: a.UA, Channel: a.Channel,
	}
}

// decide asks the guard about r and turns anything but allow into a
// refusal. A guard that cannot decide refuses (fails closed). A challenge
// is met by the actor's step-up when it was made for this very action with
// a factor at least as strong as the one asked for.
func (b *Broker) decide(ctx context.Context, a Actor, r *event.Record) (event.Decision, error) {
	d, err := b.guard.Decide(ctx, r)
	if err != nil {
		b.log.ErrorContext(ctx, "guard could not decide; refusing", "event", r.ID, "type", r.Type, "account", r.Account, "err", err)
		return d, reason.E(reason.GuardUnavailable)
	}
	switch d.Action {
	case event.Allow:
		return d, nil
	case event.Challenge:
		if a.StepUp != nil && a.StepUp.Binding == Binding(r) && b.meets(ctx, d.Factor, a.StepUp, r) {
			return d, nil
		}
		e := reason.E("step_up_required.factor", "factor", reason.W("factor", d.Factor))
		e.Decision, e.Binding = &d, Binding(r)
		return d, e
	case event.Hold:
		e := reason.E(reason.Held)
		e.Decision = &d
		return d, e
	case event.Deny:
		e := reason.E(reason.Denied)
		if haltedBuy(r, &d) {
			// The guard knew of the halt before this brokerage's own list
			// did (a cluster node's watchtower raised it a moment ago):
			// the customer is told what they would be told a moment later.
			e = reason.E("instrument_halted.guard", "symbol", r.Symbol)
		}
		e.Decision = &d
		return d, e
	}
	b.log.ErrorContext(ctx, "guard returned an unknown action; refusing", "action", d.Action)
	return d, reason.E("guard_unavailable.no_answer")
}

// haltedBuy reports whether d denies buy order r for its issue's halt
// alone: no other reason (a freeze, the risk of the session) stands with it.
func haltedBuy(r *event.Record, d *event.Decision) bool {
	return r.Type == event.TypeOrder && r.Side == event.SideBuy && len(d.Reasons) > 0 &&
		!slices.ContainsFunc(d.Reasons, func(c string) bool { return c != reason.InstrumentHalted })
}

// logEvent appends r to the stored stream inside tx, and runs the InTx hook.
func (b *Broker) logEvent(ctx context.Context, tx *sql.Tx, r *event.Record) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO events (id, time_us, type, account, body) VALUES ($1, $2, $3, $4, $5)`,
		r.ID, store.Micros(r.Time), string(r.Type), r.Account, string(r.AppendJSON(nil)))
	if err == nil && b.inTx != nil {
		err = b.inTx(ctx, tx, r)
	}
	return err
}

// logRefused stores a refused action's record outside any other work.
func (b *Broker) logRefused(ctx context.Context, r *event.Record) {
	err := b.db.Tx(ctx, func(tx *sql.Tx) error { return b.logEvent(ctx, tx, r) })
	if err != nil {
		b.log.ErrorContext(ctx, "could not store refused action", "event", r.ID, "err", err)
	}
	b.publish(ctx, r)
}

// Events returns stored records after the given time (exclusive), oldest
// first, at most limit, optionally for one account.
func (b *Broker) Events(ctx context.Context, account string, after time.Time, limit int) ([]string, error) {
	q := `SELECT body FROM events WHERE time_us > $1 ORDER BY time_us, id LIMIT $2`
	args := []any{store.Micros(after), limit}
	if account != "" {
		q = `SELECT body FROM events WHERE time_us > $1 AND account = $2 ORDER BY time_us, id LIMIT $3`
		args = []any{store.Micros(after), account, limit}
	}
	return b.strings(ctx, q, args...)
}

// strings runs a query of one text column and returns its values.
func (b *Broker) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := b.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

var errNoRows = sql.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
