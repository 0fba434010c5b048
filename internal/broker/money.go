package broker

import (
	"context"
	"database/sql"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Withdrawal is a withdrawal and what became of it.
type Withdrawal struct {
	ID        string          `json:"withdrawal_id"`
	Account   string          `json:"account"`
	AmountJPY int64           `json:"amount_jpy"`
	Bank      string          `json:"bank"`
	Status    string          `json:"status"`
	Created   time.Time       `json:"created"`
	Decision  *event.Decision `json:"decision,omitempty"`
}

// Withdraw sends amount yen to the account's registered bank account, the
// only destination there is. It fails closed: when the guard cannot
// decide, nothing moves.
func (b *Broker) Withdraw(ctx context.Context, a Actor, account string, amount int64, idemKey string) (*Withdrawal, error) {
	var out Withdrawal
	id, done, err := b.idempotent(ctx, a, idemKey, "withdraw:"+account, amount, &out)
	if err != nil {
		return nil, err
	}
	if done {
		return &out, nil
	}
	if amount <= 0 {
		return nil, reason.E("invalid_field.amount_jpy")
	}
	var bank, bankHash string
	err = b.db.QueryRowContext(ctx, `SELECT bank_label, bank_hash FROM accounts WHERE id = $1`, account).Scan(&bank, &bankHash)
	if isNoRows(err) {
		return nil, reason.E(reason.UnknownAccount, "account", account)
	}
	if err != nil {
		return nil, err
	}
	if err := b.checkGate(ctx, account, GateOp{Kind: "withdrawal"}); err != nil {
		return nil, err
	}
	now := b.clock.Now()
	rec := b.record(event.TypeWithdrawal, account, a, now)
	rec.AmountJPY, rec.BankHash = amount, bankHash
	out = Withdrawal{ID: b.ids("W"), Account: account, AmountJPY: amount, Bank: MaskBank(bank), Status: "sent", Created: now}
	d, gerr := b.decide(ctx, a, rec)
	held := false
	if gerr != nil {
		if e := reason.As(gerr); e == nil || e.Code != reason.Held {
			b.logRefused(ctx, rec)
			return nil, gerr
		}
		// Held: the cash is reserved until an analyst decides.
		held, out.Status = true, StatusHeld
	}
	out.Decision = &d
	replayed, err := b.once(ctx, a.Principal, id, &out, func(tx *sql.Tx) error {
		q := `UPDATE accounts SET cash_jpy = cash_jpy - $1 WHERE id = $2 AND cash_jpy - reserved_jpy >= $1`
		if held {
			q = `UPDATE accounts SET reserved_jpy = reserved_jpy + $1 WHERE id = $2 AND cash_jpy - reserved_jpy >= $1`
		}
		res, err := tx.ExecContext(ctx, q, amount, account)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return reason.E("insufficient_cash.withdraw", "amount_jpy", reason.Yen(amount))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO withdrawals (id, account, amount_jpy, bank_hash, status, event_id, created_us) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			out.ID, account, amount, bankHash, out.Status, rec.ID, store.Micros(now)); err != nil {
			return err
		}
		if !held {
			if err := ledger(ctx, tx, b.ids("L"), account, now, "withdrawal", "", "", 0, 0, -amount, out.ID); err != nil {
				return err
			}
		}
		return b.logEvent(ctx, tx, rec)
	})
	if err != nil {
		if reason.As(err) != nil {
			b.logRefused(ctx, rec)
		}
		return nil, err
	}
	if !replayed {
		b.publish(ctx, rec)
	}
	if held {
		return &out, gerr
	}
	return &out, nil
}

// MaskBank hides every digit of a bank account but the last four
// ("Rakuten Bank •••-•••7280"): the one rule for every page, answer and
// message that shows a bank account.
func MaskBank(s string) string {
	r := []rune(s)
	if len(r) <= 4 {
		return s
	}
	for i := 0; i < len(r)-4; i++ {
		if r[i] >= '0' && r[i] <= '9' {
			r[i] = '•'
		}
	}
	return string(r)
}

// Change is the result of a bank or contact change.
type Change struct {
	Account  string          `json:"account"`
	Field    string          `json:"field"`
	Value    string          `json:"value"`
	Status   string          `json:"status"`
	Decision *event.Decision `json:"decision,omitempty"`
}

// ChangeBank registers a new withdrawal bank account.
func (b *Broker) ChangeBank(ctx context.Context, a Actor, account, bank string, idemKey string) (*Change, error) {
	return b.change(ctx, a, account, "bank", bank, idemKey)
}

// ChangeContact changes the email address, phone number or address.
func (b *Broker) ChangeContact(ctx context.Context, a Actor, account, field, value string, idemKey string) (*Change, error) {
	if field != "email" && field != "phone" && field != "address" {
		return nil, reason.E("invalid_field.contact_field")
	}
	return b.change(ctx, a, account, field, value, idemKey)
}

func (b *Broker) change(ctx context.Context, a Actor, account, field, value, idemKey string) (*Change, error) {
	var out Change
	id, done, err := b.idempotent(ctx, a, idemKey, "change:"+field+":"+account, value, &out)
	if err != nil {
		return nil, err
	}
	if done {
		return &out, nil
	}
	value = strings.TrimSpace(value)
	if value == "" || utf8.RuneCountInString(value) > 200 || !utf8.ValidString(value) {
		return nil, reason.E("invalid_field.contact_length", "field", reason.W("field", field))
	}
	if field == "email" && (!strings.Contains(value, "@") || strings.ContainsAny(value, " <>")) {
		return nil, reason.E("invalid_field.email")
	}
	if _, err := b.accountFlags(ctx, account); err != nil {
		return nil, err
	}
	if err := b.checkGate(ctx, account, GateOp{Kind: "change"}); err != nil {
		return nil, err
	}
	now := b.clock.Now()
	hash := b.Hash(field, value)
	var rec *event.Record
	if field == "bank" {
		rec = b.record(event.TypeBankChange, account, a, now)
		rec.BankHash = hash
	} else {
		rec = b.record(event.TypeContactChange, account, a, now)
		rec.Field, rec.NewHash = field, hash
	}
	d, gerr := b.decide(ctx, a, rec)
	if gerr != nil {
		// Nothing changes while a change is held: the customer repeats it
		// once cleared, so there is no half-registered bank account.
		b.logRefused(ctx, rec)
		return nil, gerr
	}
	shown := value
	if field == "bank" {
		shown = MaskBank(value)
	}
	out = Change{Account: account, Field: field, Value: shown, Status: "changed", Decision: &d}
	set := map[string]string{
		"bank":    `UPDATE accounts SET bank_label = $1, bank_hash = $2 WHERE id = $3`,
		"email":   `UPDATE accounts SET email = $1, email_hash = $2 WHERE id = $3`,
		"phone":   `UPDATE accounts SET phone = $1, phone_hash = $2 WHERE id = $3`,
		"address": `UPDATE accounts SET address = $1, address_hash = $2 WHERE id = $3`,
	}[field]
	replayed, err := b.once(ctx, a.Principal, id, &out, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, set, value, hash, account); err != nil {
			return err
		}
		return b.logEvent(ctx, tx, rec)
	})
	if err != nil {
		return nil, err
	}
	if !replayed {
		b.publish(ctx, rec)
	}
	return &out, nil
}
