package web

import (
	"net/http"
	"strings"
	"testing"
	"unicode"
)

// TestRefusalsInTheCustomersLanguage: a refusal reaches the portal as a
// catalogue key and parameters and leaves it in the customer's language
// only, yen with separators, with its stable code and the catalogue's
// status; no "日本語 / English" pair and no raw parameter.
func TestRefusalsInTheCustomersLanguage(t *testing.T) {
	k := startKabuto(t)
	for i, tt := range []struct {
		lang, tooMuch, badAmount string
	}{
		{"ja", "出金できる金額（5,000,000円）を超えています", "出金額を正しく入力してください"},
		{"en", "That is more than you can withdraw (¥5,000,000)", "Enter an amount in yen"},
	} {
		t.Run(tt.lang, func(t *testing.T) {
			id := []string{"C0400001", "C0400002"}[i]
			k.customer(t, id, tt.lang)
			a := k.agentIn(t, []string{"192.0.2.80", "192.0.2.81"}[i], tt.lang)
			a.signIn(id, "")
			for _, c := range []struct {
				amount int64
				status int
				code   string
				want   string
			}{
				{9_000_000, http.StatusConflict, "insufficient_cash", tt.tooMuch},
				{-5, http.StatusBadRequest, "invalid_field", tt.badAmount},
			} {
				status, out := a.api("/portal/api/withdraw", map[string]any{"amount_jpy": c.amount})
				msg, _ := out["message"].(string)
				if status != c.status || out["error"] != c.code || msg != c.want {
					t.Errorf("withdraw %d: %d %v %q, want %d %s %q", c.amount, status, out["error"], msg, c.status, c.code, c.want)
				}
				if strings.Contains(msg, " / ") || strings.Contains(msg, "{") {
					t.Errorf("withdraw %d: message %q is bilingual or unfilled", c.amount, msg)
				}
				if tt.lang == "en" && strings.ContainsFunc(msg, func(r rune) bool { return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana) }) {
					t.Errorf("withdraw %d: English page shows Japanese: %q", c.amount, msg)
				}
			}
		})
	}
}
