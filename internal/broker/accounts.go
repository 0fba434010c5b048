package broker

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// NewAccount describes an account to open.
type NewAccount struct {
	ID             string
	Name           string
	Locale         string // "ja" or "en"
	Email, Phone   string
	Address        string
	Bank           string // withdrawal bank account, e.g. "Mizuho 001-1234567"
	Opened         time.Time
	CashJPY        int64
	Holdings       []event.Holding
	Factors        []string // authenticators, for the snapshot record
	ForeignEnabled bool
	MarginEnabled  bool
}

// Position is one holding.
type Position struct {
	Symbol      string  `json:"symbol"`
	Name        string  `json:"name"`
	Kind        string  `json:"kind"`
	Qty         int64   `json:"qty"`
	ReservedQty int64   `json:"reserved_qty"`
	CostJPY     int64   `json:"cost_jpy"`
	Price       float64 `json:"price"`
	Currency    string  `json:"currency"`
	ValueJPY    int64   `json:"value_jpy"`
}

// Account is an account as its owner sees it.
type Account struct {
	ID             string     `json:"account"`
	Name           string     `json:"name"`
	Locale         string     `json:"locale"`
	Email          string     `json:"email"`
	Phone          string     `json:"phone"`
	Bank           string     `json:"bank"`
	BankHash       string     `json:"bank_hash"`
	EmailHash      string     `json:"email_hash"`
	PhoneHash      string     `json:"phone_hash"`
	Opened         string     `json:"opened"`
	CashJPY        int64      `json:"cash_jpy"`
	ReservedJPY    int64      `json:"reserved_jpy"`
	AvailableJPY   int64      `json:"available_jpy"`
	MarketValueJPY int64      `json:"market_value_jpy"`
	ForeignEnabled bool       `json:"foreign_enabled"`
	MarginEnabled  bool       `json:"margin_enabled"`
	Positions      []Position `json:"positions"`
}

// SeedInstruments stores the instruments of the exchange that are not yet
// stored and emits an instrument record for each.
func (b *Broker) SeedInstruments(ctx context.Context, ins []market.Instrument) error {
	now := b.clock.Now()
	var recs []*event.Record
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, in := range ins {
			res, err := tx.ExecContext(ctx, `INSERT INTO instruments (symbol, name, market, currency, lot, adv_shares, prev_close, large_cap)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (symbol) DO NOTHING`,
				in.Symbol, in.Name, in.Market, in.Currency, in.Lot, in.ADVShares, in.PrevClose, store.Int(in.LargeCap))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			r := InstrumentRecord(in, b.ids("E"), now)
			if err := b.logEvent(ctx, tx, r); err != nil {
				return err
			}
			recs = append(recs, r)
		}
		return nil
	})
	if err == nil {
		b.publish(ctx, recs...)
	}
	return err
}

// InstrumentRecord returns the spec's instrument record of in.
func InstrumentRecord(in market.Instrument, id string, t time.Time) *event.Record {
	return &event.Record{ID: id, Type: event.TypeInstrument, Time: t, Symbol: in.Symbol, Name: in.Name, Market: in.Market,
		Currency: in.Currency, Price: in.PrevClose, PriceJPY: math.Round(in.PriceJPY(in.PrevClose)*100) / 100, ADVShares: in.ADVShares, Lot: in.Lot}
}

// OpenAccount opens an account with its opening cash and holdings, each
// written to the ledger, and emits the account snapshot record.
func (b *Broker) OpenAccount(ctx context.Context, a NewAccount) error {
	return b.OpenAccounts(ctx, []NewAccount{a})
}

// OpenAccounts opens many accounts in one transaction: all or none.
func (b *Broker) OpenAccounts(ctx context.Context, as []NewAccount) error {
	now := b.clock.Now()
	snaps := make([]*event.Record, 0, len(as))
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		snaps = snaps[:0]
		for _, a := range as {
			snap, err := b.openAccount(ctx, tx, a, now)
			if err != nil {
				return err
			}
			snaps = append(snaps, snap)
		}
		return nil
	})
	if err == nil {
		b.publish(ctx, snaps...)
	}
	return err
}

func (b *Broker) openAccount(ctx context.Context, tx *sql.Tx, a NewAccount, now time.Time) (*event.Record, error) {
	if a.ID == "" || a.Name == "" || a.Bank == "" || a.CashJPY < 0 {
		return nil, reason.E("invalid_field.account")
	}
	if a.Locale == "" {
		a.Locale = "ja"
	}
	if a.Opened.IsZero() {
		a.Opened = now
	}
	snap := &event.Record{ID: b.ids("E"), Type: event.TypeAccount, Time: now, Account: a.ID,
		Opened: a.Opened.In(clock.JST).Format(time.DateOnly), CashJPY: a.CashJPY, Holdings: a.Holdings, Factors: a.Factors,
		EmailHash: b.Hash("email", a.Email), PhoneHash: b.Hash("phone", a.Phone), BankHash: b.Hash("bank", a.Bank),
		ForeignEnabled: a.ForeignEnabled, MarginEnabled: a.MarginEnabled}
	_, err := tx.ExecContext(ctx, `INSERT INTO accounts (id, name, locale, email, phone, address, email_hash, phone_hash, address_hash,
		bank_label, bank_hash, opened, cash_jpy, foreign_enabled, margin_enabled, created_us)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		a.ID, a.Name, a.Locale, a.Email, a.Phone, a.Address, snap.EmailHash, snap.PhoneHash, b.Hash("address", a.Address),
		a.Bank, snap.BankHash, snap.Opened, a.CashJPY, store.Int(a.ForeignEnabled), store.Int(a.MarginEnabled), store.Micros(now))
	if err != nil {
		return nil, fmt.Errorf("open account %s: %w", a.ID, err)
	}
	if err := ledger(ctx, tx, b.ids("L"), a.ID, now, "opening", "", "", 0, 0, a.CashJPY, ""); err != nil {
		return nil, err
	}
	for _, h := range a.Holdings {
		if _, err := tx.ExecContext(ctx, `INSERT INTO positions (account, symbol, kind, qty, cost_jpy) VALUES ($1, $2, $3, $4, $5)`,
			a.ID, h.Symbol, h.Kind, h.Qty, h.CostJPY); err != nil {
			return nil, fmt.Errorf("open account %s: holding %s: %w", a.ID, h.Symbol, err)
		}
		if err := ledger(ctx, tx, b.ids("L"), a.ID, now, "opening", h.Symbol, h.Kind, h.Qty, 0, 0, ""); err != nil {
			return nil, err
		}
	}
	return snap, b.logEvent(ctx, tx, snap)
}

func ledger(ctx context.Context, tx *sql.Tx, id, account string, t time.Time, entry, symbol, kind string, qty int64, price float64, cash int64, ref string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO ledger (id, account, time_us, entry, symbol, kind, qty, price, cash_jpy, ref)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, id, account, store.Micros(t), entry, symbol, kind, qty, price, cash, ref)
	return err
}

// Account returns the account with its positions valued at the exchange's
// current prices.
func (b *Broker) Account(ctx context.Context, id string) (*Account, error) {
	a := &Account{ID: id, Positions: []Position{}}
	var fe, me int64
	err := b.db.QueryRowContext(ctx, `SELECT name, locale, email, phone, bank_label, bank_hash, email_hash, phone_hash, opened,
		cash_jpy, reserved_jpy, foreign_enabled, margin_enabled FROM accounts WHERE id = $1`, id).
		Scan(&a.Name, &a.Locale, &a.Email, &a.Phone, &a.Bank, &a.BankHash, &a.EmailHash, &a.PhoneHash, &a.Opened,
			&a.CashJPY, &a.ReservedJPY, &fe, &me)
	if isNoRows(err) {
		return nil, reason.E(reason.UnknownAccount, "account", id)
	}
	if err != nil {
		return nil, err
	}
	a.ForeignEnabled, a.MarginEnabled = store.Bool(fe), store.Bool(me)
	a.AvailableJPY = a.CashJPY - a.ReservedJPY
	rows, err := b.db.QueryContext(ctx, `SELECT p.symbol, i.name, p.kind, p.qty, p.reserved_qty, p.cost_jpy, i.currency
		FROM positions p JOIN instruments i ON i.symbol = p.symbol WHERE p.account = $1 AND p.qty > 0 ORDER BY p.symbol, p.kind`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var p Position
		if err := rows.Scan(&p.Symbol, &p.Name, &p.Kind, &p.Qty, &p.ReservedQty, &p.CostJPY, &p.Currency); err != nil {
			return nil, err
		}
		if q, ok := b.x.Quote(p.Symbol); ok {
			p.Price = q.Last
			fx, _ := market.FX(p.Currency)
			p.ValueJPY = int64(math.Round(float64(p.Qty) * q.Last * fx))
		}
		a.MarketValueJPY += p.ValueJPY
		a.Positions = append(a.Positions, p)
	}
	return a, rows.Err()
}

// Accounts lists account ids in order, after the given id, at most limit.
func (b *Broker) Accounts(ctx context.Context, after string, limit int) ([]string, error) {
	return b.strings(ctx, `SELECT id FROM accounts WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
}

// LedgerTotals sums the ledger of an account: cash, and shares per
// symbol and kind ("symbol/kind"). Balances must always equal these.
func (b *Broker) LedgerTotals(ctx context.Context, account string) (cash int64, shares map[string]int64, err error) {
	rows, err := b.db.QueryContext(ctx, `SELECT symbol, kind, SUM(qty), SUM(cash_jpy) FROM ledger WHERE account = $1 GROUP BY symbol, kind`, account)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	shares = map[string]int64{}
	for rows.Next() {
		var sym, kind string
		var q, c int64
		if err := rows.Scan(&sym, &kind, &q, &c); err != nil {
			return 0, nil, err
		}
		cash += c
		if sym != "" && q != 0 {
			shares[sym+"/"+kind] = q
		}
	}
	return cash, shares, rows.Err()
}

// Snapshot returns the spec's account record of the account as it is now.
func (b *Broker) Snapshot(ctx context.Context, id string, factors []string) (*event.Record, error) {
	a, err := b.Account(ctx, id)
	if err != nil {
		return nil, err
	}
	r := &event.Record{ID: b.ids("E"), Type: event.TypeAccount, Time: b.clock.Now(), Account: id, Opened: a.Opened, CashJPY: a.CashJPY,
		Factors: factors, EmailHash: a.EmailHash, PhoneHash: a.PhoneHash, BankHash: a.BankHash, ForeignEnabled: a.ForeignEnabled, MarginEnabled: a.MarginEnabled}
	for _, p := range a.Positions {
		r.Holdings = append(r.Holdings, event.Holding{Symbol: p.Symbol, Qty: p.Qty, CostJPY: p.CostJPY, Kind: p.Kind})
	}
	sort.Slice(r.Holdings, func(i, j int) bool { return r.Holdings[i].Symbol < r.Holdings[j].Symbol })
	return r, nil
}
