package assurance

import (
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

func TestRule(t *testing.T) {
	deadline := time.Date(2027, 3, 31, 0, 0, 0, 0, time.UTC)
	r := Rule{PasskeyDeadline: deadline}
	before, after := deadline.Add(-time.Hour), deadline
	pr, mfa := event.FactorPhishingResistant, event.FactorMFA
	for _, c := range []struct {
		name          string
		asked, proved string
		t             event.Type
		passkey       bool
		now           time.Time
		want          bool
	}{
		{"passkey meets everything", pr, pr, event.TypeBankChange, true, after, true},
		{"code meets mfa", mfa, mfa, event.TypeOrder, false, after, true},
		{"interim withdrawal by code", pr, mfa, event.TypeWithdrawal, false, before, true},
		{"withdrawal by code after the deadline", pr, mfa, event.TypeWithdrawal, false, after, false},
		{"withdrawal by code with a passkey enrolled", pr, mfa, event.TypeWithdrawal, true, before, false},
		{"bank change by code, even in interim", pr, mfa, event.TypeBankChange, false, before, false},
		{"contact change by code, even in interim", pr, mfa, event.TypeContactChange, false, before, false},
		{"nothing proved", mfa, "", event.TypeOrder, false, before, false},
	} {
		if got := r.Meets(c.asked, c.proved, c.t, c.passkey, c.now); got != c.want {
			t.Errorf("%s: Meets = %v, want %v", c.name, got, c.want)
		}
	}
	if (Rule{}).Interim(event.TypeWithdrawal, false, before) {
		t.Error("the zero Rule has an interim mode")
	}
}
