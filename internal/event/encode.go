package event

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// TimeLayout is how records, decisions and alerts write times: RFC 3339
// with the record's own offset and as many fraction digits as it needs.
const TimeLayout = time.RFC3339Nano

// AppendJSON appends r as one JSON object holding the envelope and exactly
// the fields the spec lists for r's type, in the spec's order. The output
// is deterministic: the same record always gives the same bytes.
func (r *Record) AppendJSON(b []byte) []byte {
	w := objWriter{b: append(b, '{')}
	w.str("id", r.ID)
	w.str("type", string(r.Type))
	w.time("time", r.Time)
	if r.Type.Action() {
		w.str("account", r.Account)
		w.str("session", r.Session)
		w.str("ip", r.IP)
		w.int("asn", r.ASN)
		w.str("country", r.Country)
		w.str("device", r.Device)
		w.str("ua", r.UA)
		w.str("channel", r.Channel)
	}
	switch r.Type {
	case TypeInstrument:
		w.str("symbol", r.Symbol)
		w.str("name", r.Name)
		w.str("market", r.Market)
		w.str("currency", r.Currency)
		w.num("price", r.Price)
		w.num("price_jpy", r.PriceJPY)
		w.int("adv_shares", r.ADVShares)
		w.int("lot", r.Lot)
	case TypeAccount:
		w.str("account", r.Account)
		w.str("opened", r.Opened)
		w.int("cash_jpy", r.CashJPY)
		w.key("holdings")
		w.b = append(w.b, '[')
		for i, h := range r.Holdings {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			hw := objWriter{b: append(w.b, '{')}
			hw.str("symbol", h.Symbol)
			hw.int("qty", h.Qty)
			hw.int("cost_jpy", h.CostJPY)
			hw.str("kind", h.Kind)
			w.b = append(hw.b, '}')
		}
		w.b = append(w.b, ']')
		w.strs("factors", r.Factors)
		w.str("email_hash", r.EmailHash)
		w.str("phone_hash", r.PhoneHash)
		w.str("bank_hash", r.BankHash)
		w.bool("foreign_enabled", r.ForeignEnabled)
		w.bool("margin_enabled", r.MarginEnabled)
	case TypeBar:
		w.str("symbol", r.Symbol)
		w.num("open", r.Open)
		w.num("high", r.High)
		w.num("low", r.Low)
		w.num("close", r.Close)
		w.int("volume", r.Volume)
	case TypeFill:
		w.str("account", r.Account)
		w.str("order_id", r.OrderID)
		w.str("symbol", r.Symbol)
		w.str("side", r.Side)
		w.int("qty", r.Qty)
		w.num("price", r.Price)
		w.int("value_jpy", r.ValueJPY)
	case TypeLogin:
		w.str("method", r.Method)
		w.strs("factors", r.Factors)
		w.bool("ok", r.OK)
	case TypeOrder:
		w.str("order_id", r.OrderID)
		w.str("symbol", r.Symbol)
		w.str("side", r.Side)
		w.int("qty", r.Qty)
		w.str("price_type", r.PriceType)
		if r.PriceType == PriceLimit {
			w.num("limit_price", r.LimitPrice)
		}
		w.str("account_kind", r.AccountKind)
		w.int("value_jpy", r.ValueJPY)
	case TypeWithdrawal:
		w.int("amount_jpy", r.AmountJPY)
		w.str("bank_hash", r.BankHash)
	case TypeBankChange:
		w.str("bank_hash", r.BankHash)
	case TypeContactChange:
		w.str("field", r.Field)
		w.str("new_hash", r.NewHash)
	case TypeFactorAdd, TypeFactorRemove:
		w.str("factor", r.Factor)
	}
	return append(w.b, '}')
}

// MarshalJSON encodes r as AppendJSON does.
func (r Record) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// AppendJSON appends d as one JSON object, deterministically.
func (d *Decision) AppendJSON(b []byte) []byte {
	w := objWriter{b: append(b, '{')}
	w.str("event", d.Event)
	w.time("time", d.Time)
	w.str("account", d.Account)
	w.str("action", d.Action)
	if d.Factor != "" {
		w.str("factor", d.Factor)
	}
	w.int("score", int64(d.Score))
	w.strs("reasons", d.Reasons)
	w.str("policy", d.Policy)
	if d.Node != "" {
		w.str("node", d.Node)
	}
	return append(w.b, '}')
}

// MarshalJSON encodes d as AppendJSON does.
func (d Decision) MarshalJSON() ([]byte, error) { return d.AppendJSON(nil), nil }

// AppendJSON appends a as one JSON object, deterministically.
func (a *Alert) AppendJSON(b []byte) []byte {
	w := objWriter{b: append(b, '{')}
	w.str("alert", a.Alert)
	w.time("time", a.Time)
	w.str("kind", a.Kind)
	if a.Symbol != "" {
		w.str("symbol", a.Symbol)
	}
	w.strs("accounts", a.Accounts)
	w.int("score", int64(a.Score))
	w.str("action", a.Action)
	if a.Campaign != "" {
		w.str("campaign", a.Campaign)
	}
	if len(a.Reasons) > 0 {
		w.strs("reasons", a.Reasons)
	}
	return append(w.b, '}')
}

// MarshalJSON encodes a as AppendJSON does.
func (a Alert) MarshalJSON() ([]byte, error) { return a.AppendJSON(nil), nil }

type objWriter struct {
	b     []byte
	comma bool
}

func (w *objWriter) key(k string) {
	if w.comma {
		w.b = append(w.b, ',')
	}
	w.comma = true
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *objWriter) str(k, v string) {
	w.key(k)
	w.b = AppendString(w.b, v)
}

func (w *objWriter) strs(k string, v []string) {
	w.key(k)
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = AppendString(w.b, s)
	}
	w.b = append(w.b, ']')
}

func (w *objWriter) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *objWriter) num(k string, v float64) {
	w.key(k)
	w.b = strconv.AppendFloat(w.b, v, 'f', -1, 64)
}

func (w *objWriter) bool(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

func (w *objWriter) time(k string, t time.Time) {
	w.key(k)
	w.b = append(w.b, '"')
	w.b = t.AppendFormat(w.b, TimeLayout)
	w.b = append(w.b, '"')
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD;
// <, > and & are escaped so the output is safe to embed in HTML.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
