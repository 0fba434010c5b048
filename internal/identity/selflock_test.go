package identity

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// TestCheckSelfLock: the one self-lock check lets everything through
// without a lock, and with one refuses exactly what the scope covers,
// with a refusal that names the scope and IsSelfLocked recognises.
func TestCheckSelfLock(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db, clock.NewFake(time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST)), nil)
		addAccount(t, s, db, "C0000001", "pw")
		buy := Op{Kind: "order", Side: "buy"}
		ops := []Op{buy, {Kind: "order", Side: "sell", Foreign: true}, {Kind: "withdrawal"}, {Kind: "change"}, {Kind: "signin"}}
		for _, op := range ops {
			if err := s.CheckSelfLock(ctx, "C0000001", op); err != nil {
				t.Errorf("no lock, %+v: %v", op, err)
			}
		}
		for _, scope := range []int{LockForeign, LockTrading, LockTradingAndLogin} {
			if err := s.SetSelfLock(ctx, "C0000001", scope, "test", home, nil); err != nil {
				t.Fatal(err)
			}
			for _, op := range ops {
				err := s.CheckSelfLock(ctx, "C0000001", op)
				if want := Locked(scope, op); !want {
					if err != nil {
						t.Errorf("scope %d, %+v: %v, want through", scope, op, err)
					}
					continue
				}
				e := reason.As(err)
				if !IsSelfLocked(err) || e.Code != reason.AccountLocked || e.Param("scope") != reason.W("scope", strconv.Itoa(scope)) {
					t.Errorf("scope %d, %+v: %v, want the self-lock refusal naming scope %d", scope, op, err, scope)
				}
			}
		}
		if IsSelfLocked(nil) || IsSelfLocked(reason.E("account_locked.password")) || IsSelfLocked(errors.New("account_locked.self")) {
			t.Error("IsSelfLocked took another error for the self-lock refusal")
		}
	})
}

// TestNotifyAction: an action's notice is queued in the action's own
// transaction (rolled back with it), in the customer's language, to the
// account's address, or to the previous one when the notice asks.
func TestNotifyAction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db, clock.NewFake(time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST)), nil)
		addAccount(t, s, db, "C0000001", "pw")
		at := time.Date(2025, 4, 1, 10, 0, 0, 0, clock.JST)
		queue := func(r *event.Record, a notify.Action, rollback bool) {
			t.Helper()
			n, ok := notify.NoticeOf(a)
			if !ok {
				t.Fatalf("no notice of %+v", a)
			}
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				if err := s.NotifyAction(ctx, tx, r, n, "old@example.jp"); err != nil {
					return err
				}
				if rollback {
					return errors.New("the action failed")
				}
				return nil
			})
			if err != nil && !rollback {
				t.Fatal(err)
			}
		}
		rec := func(typ event.Type, field string) *event.Record {
			return &event.Record{ID: "E-" + string(typ) + field, Type: typ, Time: at, Account: "C0000001", Field: field, IP: home.IP, ASN: home.ASN, Country: home.Country, UA: home.UA, Device: home.Device}
		}
		queue(rec(event.TypeContactChange, "email"), notify.Action{Type: event.TypeContactChange, Field: "email"}, false)
		queue(rec(event.TypeContactChange, "phone"), notify.Action{Type: event.TypeContactChange, Field: "phone"}, false)
		queue(rec(event.TypeWithdrawal, ""), notify.Action{Type: event.TypeWithdrawal, Status: "sent", Bank: "Mizuho •••-•••4567", AmountJPY: 120_000}, true)
		rows, err := db.QueryContext(ctx, `SELECT address, kind, locale, body FROM outbox WHERE account = 'C0000001' AND kind IN ($1, $2) ORDER BY address`, notify.KindContact, notify.KindWithdrawal)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got [][4]string
		for rows.Next() {
			var r [4]string
			if err := rows.Scan(&r[0], &r[1], &r[2], &r[3]); err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		if len(got) != 2 || got[0][0] != "C0000001@example.jp" || got[1][0] != "old@example.jp" {
			t.Fatalf("outbox = %q, want the phone change to the account's address, the email change to the previous one and no withdrawal (rolled back)", got)
		}
		for _, m := range got {
			if m[1] != string(notify.KindContact) || m[2] != "ja" {
				t.Errorf("notice %q: want a contact change in Japanese", m)
			}
		}
	})
}

// TestBackOfficeNotices: the back office's notice reaches a known
// customer in the back office's transaction (and goes with it when it
// rolls back); an account identity does not know gets none, and no error.
func TestBackOfficeNotices(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db, clock.NewFake(time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST)), nil)
		addAccount(t, s, db, "C0000001", "pw")
		n := s.BackOfficeNotices()
		kind := string(notify.KindLocked)
		if err := db.Tx(ctx, func(tx *sql.Tx) error { return n.Notify(ctx, tx, "C0000001", kind, nil) }); err != nil {
			t.Fatal(err)
		}
		if err := db.Tx(ctx, func(tx *sql.Tx) error { return n.Notify(ctx, tx, "C9999999", kind, nil) }); err != nil {
			t.Fatalf("unknown account: %v, want no notice and no error", err)
		}
		db.Tx(ctx, func(tx *sql.Tx) error {
			if err := n.Notify(ctx, tx, "C0000001", kind, nil); err != nil {
				t.Fatal(err)
			}
			return errors.New("the back office's action failed")
		})
		var known, unknown int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE account = 'C0000001' AND kind = $1`, kind).Scan(&known)
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE account = 'C9999999'`).Scan(&unknown)
		if known != 1 || unknown != 0 {
			t.Fatalf("notices: %d to the customer (want 1: the second rolled back), %d to an unknown account (want 0)", known, unknown)
		}
	})
}
