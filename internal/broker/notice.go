package broker

import (
	"context"
	"database/sql"
	"errors"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/notify"
)

// contactColumns are the account columns a contact change sets, by field.
var contactColumns = map[string]string{"email": "email_hash", "phone": "phone_hash", "address": "address_hash"}

// ActionOf reads, inside the transaction that stored r, what the action r
// left in the brokerage, for the customer's notice of it (notify.NoticeOf):
// a withdrawal's status and masked bank, a bank change's masked bank, a
// contact change's field, an order's issue, side, value and status. It
// reports false for a record that is no customer action, and for an
// action stored without effect (refused: no withdrawal or order row, or
// an account whose bank or contact is not the one asked for).
func ActionOf(ctx context.Context, tx *sql.Tx, r *event.Record) (notify.Action, bool, error) {
	a := notify.Action{Type: r.Type, Field: r.Field, Symbol: r.Symbol, Side: r.Side, Qty: r.Qty}
	if !r.Type.Action() || r.Account == "" {
		return a, false, nil
	}
	var err error
	switch r.Type {
	case event.TypeWithdrawal:
		var bank string
		err = tx.QueryRowContext(ctx, `SELECT w.status, a.bank_label FROM withdrawals w JOIN accounts a ON a.id = w.account WHERE w.event_id = $1`, r.ID).Scan(&a.Status, &bank)
		a.Bank, a.AmountJPY = MaskBank(bank), r.AmountJPY
	case event.TypeBankChange:
		var bank string
		err = tx.QueryRowContext(ctx, `SELECT bank_label FROM accounts WHERE id = $1 AND bank_hash = $2`, r.Account, r.BankHash).Scan(&bank)
		a.Bank = MaskBank(bank)
	case event.TypeContactChange:
		col := contactColumns[r.Field]
		if col == "" {
			return a, false, nil
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = $1 AND `+col+` = $2`, r.Account, r.NewHash).Scan(&one)
	case event.TypeOrder:
		err = tx.QueryRowContext(ctx, `SELECT value_jpy, symbol, side, status FROM orders WHERE event_id = $1`, r.ID).Scan(&a.AmountJPY, &a.Symbol, &a.Side, &a.Status)
	default:
		return a, false, nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return a, false, nil
	}
	return a, err == nil, err
}
