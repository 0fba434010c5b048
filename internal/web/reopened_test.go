package web

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// owed is the back office's word on reopened accounts, for tests: the
// accounts that still owe a fresh passkey.
type owed struct {
	mu  sync.Mutex
	due map[string]bool
}

func (o *owed) FreshPasskeyDue(_ context.Context, account string) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.due[account], nil
}

func (o *owed) PasskeyEnrolled(_ context.Context, account string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.due, account)
	return nil
}

// TestReopenedAccountEnrolsAFreshPasskeyFirst: an account reopened after
// a freeze (the attacker had it) signs in, and before anything else must
// enrol a passkey afresh: every page leads to the security page, every
// action is refused with fresh_passkey_required, in the customer's
// language. Once a passkey is enrolled the back office hears of it and the
// account works again.
func TestReopenedAccountEnrolsAFreshPasskeyFirst(t *testing.T) {
	o := &owed{due: map[string]bool{"C0100007": true}}
	k := startKabutoWith(t, func(c *Config) { c.Reopened = o })
	k.customer(t, "C0100007", "ja")
	a := k.agentIn(t, "192.0.2.20", "ja")
	a.signIn("C0100007", "")
	// The agent's browser follows redirects: every page ends on the
	// security page, saying what to do.
	for _, page := range []string{"/portal/home", "/portal/trade", "/portal/withdraw", "/portal/bank"} {
		status, body := a.get(page)
		if status != http.StatusOK || !strings.Contains(body, "新しいパスキーを登録") {
			t.Errorf("GET %s while a fresh passkey is owed: %d %.200s, want the security page asking for a passkey", page, status, body)
		}
	}
	status, out := a.api("/portal/api/withdraw", map[string]any{"amount": 10000})
	if status != http.StatusForbidden || out["error"] != ReasonFreshPasskey || !strings.Contains(out["message"].(string), "パスキー") {
		t.Fatalf("a withdrawal while a fresh passkey is owed: %d %v", status, out)
	}
	if status, out := a.api("/portal/api/totp/begin", nil); status != http.StatusForbidden || out["error"] != ReasonFreshPasskey {
		t.Fatalf("another factor instead of the passkey: %d %v", status, out)
	}
	if status, body := a.get("/portal/security?done=fresh_passkey"); status != http.StatusOK || !strings.Contains(body, "新しいパスキーを登録") {
		t.Fatalf("the security page does not say what to do: %d %.300s", status, body)
	}
	a.enrolPasskey()
	if due, _ := o.FreshPasskeyDue(context.Background(), "C0100007"); due {
		t.Fatal("the back office did not hear of the fresh passkey")
	}
	if status, body := a.get("/portal/home"); status != http.StatusOK || strings.Contains(body, "新しいパスキーを登録") {
		t.Fatalf("home after the fresh passkey: %d %.200s", status, body)
	}
}
