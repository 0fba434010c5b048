// Package reason holds Kabuto's stable error and reason codes and Error, an
// error that carries one together with the HTTP status it maps to and a
// message a person can act on. Codes are part of the public API: they are
// added, never renamed or removed.
package reason

import (
	"errors"
	"fmt"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// Error is a refusal with a stable code.
type Error struct {
	Status  int    // HTTP status
	Code    string // stable reason code
	Message string // for a person
	// Decision is the guard's decision when the guard refused the action.
	Decision *event.Decision
	// Binding is, for step_up_required, what the step-up must commit to
	// (broker.Binding of the action).
	Binding string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New returns an *Error.
func New(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
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
