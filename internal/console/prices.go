package console

import (
	"github.com/kabuto-sec/kabuto/internal/cases"
	"github.com/kabuto-sec/kabuto/internal/market"
)

// ExchangePrices returns the exchange's last prices in yen, as the back
// office's compensation proposals need them (the API prices them alike).
func ExchangePrices(x *market.Exchange) cases.Prices {
	return func(sym string) (float64, bool) {
		q, ok := x.Quote(sym)
		in, known := x.Instrument(sym)
		if !ok || !known {
			return 0, false
		}
		fx, ok := market.FX(in.Currency)
		return q.Last * fx, ok && q.Last > 0
	}
}
