package web

import (
	"net/http"
	"strings"
	"testing"
)

// TestTradePage: the trade page lists every issue of the exchange grouped
// by market, finds one by code or Japanese name, and an order's quote
// gives its estimated amount without placing it.
func TestTradePage(t *testing.T) {
	k := startKabuto(t)
	k.customer(t, "C7000001", "ja")
	a := k.agentIn(t, "203.0.113.70", "ja")
	a.signIn("C7000001", "")
	status, body := a.get("/portal/trade")
	if status != http.StatusOK {
		t.Fatalf("trade page: %d", status)
	}
	all := len(k.b.Exchange().Symbols())
	if n := strings.Count(body, `<tr data-symbol="`); n != all || all <= 40 {
		t.Errorf("the trade page lists %d of %d issues", n, all)
	}
	for _, want := range []string{`data-symbol="7203"`, "トヨタ自動車", "東証プライム", "香港"} {
		if !strings.Contains(body, want) {
			t.Errorf("the trade page lacks %q", want)
		}
	}
	if strings.Contains(body, ">TSE_") {
		t.Error("a raw market code on the Japanese trade page")
	}
	for _, q := range []string{"7203", "トヨタ", "toyota"} {
		_, body = a.get("/portal/trade?q=" + q)
		if n := strings.Count(body, `<tr data-symbol="`); n != 1 || !strings.Contains(body, `data-symbol="7203"`) {
			t.Errorf("search %q: %d rows", q, n)
		}
	}
	_, body = a.get("/portal/trade?market=HK")
	if strings.Contains(body, `data-symbol="7203"`) || !strings.Contains(body, `.HK"`) {
		t.Error("the market filter does not filter")
	}
	status, out := a.api("/portal/api/order/quote", map[string]any{"symbol": "7203", "side": "buy", "qty": 100, "price_type": "market", "account_kind": "cash"})
	if status != http.StatusOK || out["estimate_jpy"] == nil || out["estimate_jpy"].(float64) <= 0 || !strings.Contains(out["confirm"].(string), "概算金額: 約 ¥") {
		t.Fatalf("quote: %d %v", status, out)
	}
	if n := k.count(t, `SELECT COUNT(*) FROM orders WHERE account = 'C7000001'`); n != 0 {
		t.Fatalf("the quote placed %d orders", n)
	}
	if status, _ := a.api("/portal/api/order/quote", map[string]any{"symbol": "NOPE", "side": "buy", "qty": 100}); status != http.StatusBadRequest {
		t.Errorf("quote of an unknown code: %d", status)
	}
}
