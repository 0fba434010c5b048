package console

import (
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// TestAlertsRankedBySeverityAndMoney: the alerts list puts the highest
// score first and, among equal scores, the most money at stake (the value
// of the named accounts' orders in the instrument), then the newest.
func TestAlertsRankedBySeverityAndMoney(t *testing.T) {
	tape := NewTape(10, 100)
	t0 := time.Date(2025, 4, 15, 10, 0, 0, 0, time.UTC)
	for _, o := range []struct {
		acct, sym string
		jpy       int64
	}{{"A", "1111", 9_000_000}, {"B", "2222", 300_000}, {"C", "2222", 50_000_000}, {"D", "3333", 1_000}} {
		tape.Record(&event.Record{Type: event.TypeOrder, Time: t0, Account: o.acct, Symbol: o.sym, Side: event.SideBuy, Qty: 100, ValueJPY: o.jpy}, nil)
	}
	c := New(Config{Tape: tape})
	as := []event.Alert{
		{Alert: "low", Time: t0.Add(3 * time.Minute), Symbol: "3333", Accounts: []string{"D"}, Score: 60},
		{Alert: "small", Time: t0, Symbol: "2222", Accounts: []string{"B"}, Score: 90},
		{Alert: "big", Time: t0, Symbol: "2222", Accounts: []string{"C"}, Score: 90},
		{Alert: "top", Time: t0, Symbol: "1111", Accounts: []string{"A"}, Score: 95},
		{Alert: "none-newer", Time: t0.Add(time.Minute), Symbol: "", Score: 60},
	}
	rows := c.alertRows(as)
	var got []string
	for _, r := range rows {
		got = append(got, r.Alert.Alert)
	}
	want := []string{"top", "big", "small", "low", "none-newer"}
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
	if rows[1].AtStake != 50_000_000 || rows[2].AtStake != 300_000 {
		t.Errorf("money at stake: %d, %d", rows[1].AtStake, rows[2].AtStake)
	}
}
