// Package reason holds Kabuto's stable error and reason codes, Error (a
// refusal that carries one), and the catalogue that words every refusal in
// Japanese and English and gives the HTTP status it maps to.
//
// A domain package refuses with E: a catalogue key (a code, or a code and
// a variant such as "insufficient_cash.withdraw") and named parameters,
// never a status or words. The HTTP layers ask the catalogue for the
// status (Error.HTTPStatus) and for the words in the customer's language
// (Error.Text). Codes are part of the public API: they are added, never
// renamed or removed.
package reason

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// Error is a refusal with a stable code.
type Error struct {
	Code string // stable reason code
	// Key is the catalogue entry that words the refusal: Code itself or
	// Code + "." + a variant.
	Key string
	// Params are the named parameters the words refer to, in order.
	Params []Param
	// Decision is the guard's decision when the guard refused the action.
	Decision *event.Decision
	// Binding is, for step_up_required, what the step-up must commit to
	// (broker.Binding of the action).
	Binding string

	// Status and Message are set only by New, for refusals not yet in the
	// catalogue, and for a refusal read back from another Kabuto's API (the
	// simulator's remote brokerage): an HTTP status and words of their own.
	Status  int
	Message string
}

// Param is one named parameter of an Error.
type Param struct {
	Name  string
	Value any
}

// Yen is an amount of yen, worded with separators ("¥120,000" in English,
// "120,000円" in Japanese).
type Yen int64

// Word is a parameter worded by the catalogue's vocabulary: a set and a
// value such as "factor.phishing_resistant" or "kind.nisa". A value the
// vocabulary does not know is shown as it is.
type Word string

// W returns the Word of value in set.
func W(set, value string) Word { return Word(set + "." + value) }

// Value returns the word's value without its set ("nisa" of "kind.nisa").
func (w Word) Value() string {
	_, v, ok := strings.Cut(string(w), ".")
	if !ok {
		return string(w)
	}
	return v
}

// E returns a refusal worded by the catalogue entry key (a code, or a code
// and a variant after a dot) with the named parameters kv: a name, then
// its value, and so on. A trailing name without a value is dropped.
func E(key string, kv ...any) *Error {
	code, _, _ := strings.Cut(key, ".")
	e := &Error{Code: code, Key: key}
	for i := 0; i+1 < len(kv); i += 2 {
		name, ok := kv[i].(string)
		if !ok {
			name = fmt.Sprint(kv[i])
		}
		e.Params = append(e.Params, Param{Name: name, Value: kv[i+1]})
	}
	return e
}

// New returns an *Error with its own status and message, outside the
// catalogue. It is for refusals not yet moved into the catalogue; new code
// uses E.
func New(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error returns the code and the English words.
func (e *Error) Error() string { return e.Code + ": " + e.Text("en") }

// Param returns the value of the named parameter, or nil.
func (e *Error) Param(name string) any {
	for _, p := range e.Params {
		if p.Name == name {
			return p.Value
		}
	}
	return nil
}

// ParamMap returns the parameters as a JSON-friendly map (yen as a whole
// number, words as their value), or nil when there are none.
func (e *Error) ParamMap() map[string]any {
	if len(e.Params) == 0 {
		return nil
	}
	m := make(map[string]any, len(e.Params))
	for _, p := range e.Params {
		switch v := p.Value.(type) {
		case Yen:
			m[p.Name] = int64(v)
		case Word:
			m[p.Name] = v.Value()
		case []Word:
			s := make([]string, len(v))
			for i, w := range v {
				s[i] = w.Value()
			}
			m[p.Name] = s
		case error:
			m[p.Name] = v.Error()
		default:
			m[p.Name] = v
		}
	}
	return m
}

// As returns err's *Error, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Codes used across Kabuto.
const (
	BadRequest             = "bad_request"
	InvalidField           = "invalid_field"
	NotFound               = "not_found"
	UnknownAccount         = "unknown_account"
	UnknownSymbol          = "unknown_symbol"
	UnknownOrder           = "unknown_order"
	BadLot                 = "bad_lot"
	BadTick                = "bad_tick"
	OutsidePriceLimit      = "outside_price_limit"
	InstrumentHalted       = "instrument_halted"
	ForeignNotEnabled      = "foreign_not_enabled"
	MarginNotEnabled       = "margin_not_enabled"
	MarketClosed           = "market_closed"
	InsufficientCash       = "insufficient_cash"
	InsufficientHoldings   = "insufficient_holdings"
	OrderNotOpen           = "order_not_open"
	IdempotencyKeyRequired = "idempotency_key_required"
	IdempotencyKeyReused   = "idempotency_key_reused"
	GuardUnavailable       = "guard_unavailable"
	StepUpRequired         = "step_up_required"
	Held                   = "held_for_review"
	Denied                 = "denied"
	Unauthenticated        = "unauthenticated"
	Forbidden              = "forbidden"
	AccountLocked          = "account_locked"
	RateLimited            = "rate_limited"
	Internal               = "internal_error"
	Unavailable            = "unavailable"
)
