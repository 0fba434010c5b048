package cases

import (
	"context"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Month is one row of the FSA's monthly table of unauthorised access and
// trading: accesses, trades, value sold and value bought (months in JST).
type Month struct {
	Month                string `json:"month"`
	UnauthorisedAccesses int64  `json:"unauthorised_accesses"`
	UnauthorisedTrades   int64  `json:"unauthorised_trades"`
	ValueSoldJPY         int64  `json:"value_sold_jpy"`
	ValueBoughtJPY       int64  `json:"value_bought_jpy"`
}

// MaxMonths is the longest range the table is computed for at once.
const MaxMonths = 120

// ParseMonths parses a range of months "YYYY-MM" (both included) and
// returns the first instant of from and of the month after to, in JST.
func ParseMonths(from, to string) (time.Time, time.Time, error) {
	f, err := parseMonth("from", from)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	t, err := parseMonth("to", to)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if t.Before(f) {
		return time.Time{}, time.Time{}, reason.E(ReasonBadMonth+".order", "from", from, "to", to)
	}
	if n := (t.Year()-f.Year())*12 + int(t.Month()-f.Month()) + 1; n > MaxMonths {
		return time.Time{}, time.Time{}, reason.E(ReasonBadMonth+".span", "max", MaxMonths)
	}
	return f, t.AddDate(0, 1, 0), nil
}

func parseMonth(name, v string) (time.Time, error) {
	if len(v) != 7 || v[4] != '-' {
		return time.Time{}, reason.E(ReasonBadMonth+".format", "field", name)
	}
	t, err := time.ParseInLocation("2006-01", v, clock.JST)
	if err != nil || t.Year() < 2000 || t.Year() > 2999 {
		return time.Time{}, reason.E(ReasonBadMonth+".range", "field", name)
	}
	return t, nil
}

// FSA computes the regulator's table for the months from..to ("YYYY-MM",
// both included) from the incidents recorded in cases: each unauthorised
// access, each fraudulent fill (a trade), the value of fraudulent sells
// and of fraudulent buys. Every month of the range has a row.
func (s *Service) FSA(ctx context.Context, from, to string) ([]Month, error) {
	f, t, err := ParseMonths(from, to)
	if err != nil {
		return nil, err
	}
	out := []Month{}
	idx := map[string]int{}
	for m := f; m.Before(t); m = m.AddDate(0, 1, 0) {
		idx[m.Format("2006-01")] = len(out)
		out = append(out, Month{Month: m.Format("2006-01")})
	}
	month := func(us int64) *Month {
		i, ok := idx[store.FromMicros(us).Format("2006-01")]
		if !ok {
			return nil
		}
		return &out[i]
	}
	rows, err := s.cfg.DB.QueryContext(ctx, `SELECT time_us FROM incident_accesses WHERE time_us >= $1 AND time_us < $2`, store.Micros(f), store.Micros(t))
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var us int64
		if err := rows.Scan(&us); err != nil {
			rows.Close()
			return nil, err
		}
		if m := month(us); m != nil {
			m.UnauthorisedAccesses++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.cfg.DB.QueryContext(ctx, `SELECT time_us, side, qty, price FROM incident_fills WHERE fraudulent = 1 AND time_us >= $1 AND time_us < $2`, store.Micros(f), store.Micros(t))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var fl Fill
		var us int64
		if err := rows.Scan(&us, &fl.Side, &fl.Qty, &fl.Price); err != nil {
			return nil, err
		}
		m := month(us)
		if m == nil {
			continue
		}
		m.UnauthorisedTrades++
		if fl.Side == "sell" {
			m.ValueSoldJPY += fl.Value()
		} else {
			m.ValueBoughtJPY += fl.Value()
		}
	}
	return out, rows.Err()
}
