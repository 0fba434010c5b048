package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// TestLogMoneyMovementAheadOfQueue checks that, while the writer works
// through a long queue on SQLite, a withdrawal's decision and an alert
// are committed by the writer ahead of the queued rows, cutting the
// writer's transaction short, rather than waiting for SQLite's write lock
// behind its transactions (before, the request's own statement waited on
// SQLite's busy handler until the writer let go of the lock, which it
// took again at once for the next transaction: the withdrawal waited for
// the whole queue).
func TestLogMoneyMovementAheadOfQueue(t *testing.T) {
	db := storetest.SQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	l := NewLog(db, nil)
	at := time.Date(2025, 4, 8, 9, 0, 0, 0, jst)
	const queued = 16000 // under waitQueued: queued without a writer
	for i := range queued {
		r := &event.Record{ID: fmt.Sprintf("q-%d", i), Type: event.TypeOrder, Time: at, Account: fmt.Sprintf("A%d", i%500),
			OrderID: fmt.Sprint("o", i), Symbol: "7203", Side: "buy", Qty: 100, PriceType: "market", AccountKind: "cash", ValueJPY: 270000}
		res := &risk.Result{Decision: event.Decision{Event: r.ID, Time: r.Time, Account: r.Account, Action: event.Allow, Policy: "test", Reasons: []string{}}}
		if err := l.Decision(ctx, r, res); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	count := func() int {
		var n int
		if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM decisions`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for count() == 0 { // the writer is at work
	}
	w := &event.Record{ID: "wd-1", Type: event.TypeWithdrawal, Time: at, Account: "A1", AmountJPY: 500000}
	res := &risk.Result{Decision: event.Decision{Event: w.ID, Time: w.Time, Account: w.Account, Action: event.Allow, Policy: "test", Reasons: []string{}}}
	if err := l.Decision(ctx, w, res); err != nil {
		t.Fatal(err)
	}
	if n := count(); n > queued {
		t.Fatalf("the withdrawal's decision was committed after the whole queue (%d rows in the table)", n)
	} else {
		t.Logf("withdrawal committed with %d of %d queued rows in the table", n-1, queued)
	}
	a := &event.Alert{Alert: "al-1", Time: at, Kind: "test", Symbol: "7203", Score: 80}
	if err := l.Alert(ctx, a); err != nil {
		t.Fatal(err)
	}
	var got int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM alerts WHERE alert = 'al-1'`).Scan(&got); err != nil || got != 1 {
		t.Fatalf("alert stored %d times (%v)", got, err)
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != queued+1 {
		t.Fatalf("%d decisions stored, want %d", n, queued+1)
	}
}
