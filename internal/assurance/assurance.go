// Package assurance is the one step-up rule Kabuto applies everywhere,
// read alike by the brokerage (which checks every step-up, whatever the
// channel: portal, API or integration), the portal (which decides which
// ceremony to run) and so the API: which proof meets which challenge, for
// which customer, until when.
//
// A passkey (phishing_resistant) meets every challenge. A one-time code
// (mfa) meets an mfa challenge. A phishing_resistant challenge is met by a
// code only in interim mode: before the passkey deadline, for a customer
// who has no passkey yet, on a withdrawal (which goes only to the
// registered bank account). After the deadline such a customer enrols a
// passkey at that moment and approves with it; a bank or contact change,
// an order or an authenticator change that the guard asks a passkey for
// always needs one.
package assurance

import (
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// Rule is the step-up rule. The zero Rule has no interim mode.
type Rule struct {
	// PasskeyDeadline is when passkeys become mandatory for withdrawals.
	// Zero: they are already.
	PasskeyDeadline time.Time
}

// Interim reports whether a customer (hasPasskey says whether they have
// one) may meet a phishing_resistant challenge on an action of type t
// with a one-time code at now.
func (r Rule) Interim(t event.Type, hasPasskey bool, now time.Time) bool {
	return !hasPasskey && t == event.TypeWithdrawal && now.Before(r.PasskeyDeadline)
}

// Need returns the factor a step-up must prove when asked (the guard's or
// the portal's policy: event.FactorPhishingResistant or event.FactorMFA)
// is wanted for an action of type t.
func (r Rule) Need(asked string, t event.Type, hasPasskey bool, now time.Time) string {
	if asked == event.FactorPhishingResistant && r.Interim(t, hasPasskey, now) {
		return event.FactorMFA
	}
	return asked
}

// Meets reports whether a step-up that proved proved meets a challenge
// for asked on an action of type t.
func (r Rule) Meets(asked, proved string, t event.Type, hasPasskey bool, now time.Time) bool {
	switch proved {
	case event.FactorPhishingResistant:
		return true
	case event.FactorMFA:
		return r.Need(asked, t, hasPasskey, now) == event.FactorMFA
	}
	return false
}
