package risk

import (
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

func FuzzLoadPolicy(f *testing.F) {
	f.Add(builtinSrc)
	f.Add([]byte(head + "  - {id: r1, when: 'order.value_jpy > 10', weight: 5, reason: x}\n"))
	f.Add([]byte(head + "  - id: r1\n    when: |\n      [1,2,3].all(x, x > 0) && net.country in ['JP', 'US']\n    action: deny\n    reason: y\n"))
	f.Add([]byte("version: 1\nthresholds: {}\nrules: [{id: a, when: 'session.sold_share / 0.0 > 1.0', weight: 1, reason: a}]\n"))
	f.Add([]byte("version: &a [*a]\n"))
	f.Add([]byte("{"))
	rec := []*event.Record{
		{ID: "l", Type: event.TypeLogin, Time: time.Unix(1e9, 0), Account: "A", Session: "s", OK: true, Method: "password", Factors: []string{"password"}},
		{ID: "o", Type: event.TypeOrder, Time: time.Unix(1e9+5, 0), Account: "A", Session: "s", Symbol: "X", Side: "buy", Qty: 100, ValueJPY: 1000},
		{ID: "w", Type: event.TypeWithdrawal, Time: time.Unix(1e9+9, 0), Account: "A", Session: "s", AmountJPY: 5, BankHash: "b"},
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := loadPolicy("fuzz.yaml", src)
		if err != nil {
			if _, ok := err.(*PolicyError); !ok && !isPolicyErrors(err) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		e := NewEngine(p)
		for _, r := range rec {
			d := e.Decide(r).Decision
			if d.Score < 0 || d.Score > 100 || d.Policy != p.Version {
				t.Fatalf("bad decision %+v", d)
			}
		}
	})
}

func isPolicyErrors(err error) bool {
	_, ok := err.(PolicyErrors)
	return ok
}
