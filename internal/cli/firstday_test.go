package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestFirstDayThroughAGateway is a brokerage's first day with Kabuto (issue
// 18), end to end on the real demo: twenty customers buy 100 shares of
// Toyota (7203) each through the brokerage API, all sent from the
// brokerage's gateway without X-Kabuto-Client-IP or X-Kabuto-Device (an
// easy omission). Before the fix the watchtower read the gateway as shared
// attacker infrastructure and halted Toyota after the third order. Nothing
// is halted now and nothing is refused for a halt; /readyz, the metrics
// and the analyst console warn that the customers' context is missing.
func TestFirstDayThroughAGateway(t *testing.T) {
	base := startDemo(t, "--customers", "300")
	api := base + "/api/v1"
	filled := 0
	for i := 1; i <= 20; i++ {
		code, o := call(t, "POST", fmt.Sprintf("%s/accounts/C%07d/orders", api, i), DemoKey, fmt.Sprintf("first-day-%d", i),
			`{"symbol":"7203","side":"buy","qty":100,"price_type":"market","account_kind":"cash"}`)
		if o["error"] == "instrument_halted" {
			t.Fatalf("order %d refused for a halt: %d %v", i, code, o)
		}
		switch {
		case code == 201 && o["status"] == "filled":
			filled++
		case code == 409 && o["error"] == "insufficient_cash": // a customer of the demo without ¥270,000 to spare
		default:
			t.Errorf("order %d refused: %d %v", i, code, o)
		}
	}
	if filled < 10 {
		t.Errorf("only %d of 20 orders filled", filled)
	}
	if code, m := call(t, "GET", api+"/halts", DemoKey, "", ""); code == 200 {
		if hs, _ := m["halts"].([]any); len(hs) > 0 {
			t.Errorf("halts in force: %v", hs)
		}
	}
	t.Logf("%d of 20 orders filled", filled)

	// /readyz names the gateway; the metric counts it.
	code, ready := call(t, "GET", base+"/readyz", "", "", "")
	cc, _ := ready["client_context"].(map[string]any)
	if code != 200 || cc == nil || cc["status"] != "missing" {
		t.Fatalf("/readyz without the warning: %d %v", code, ready)
	}
	if gws, _ := cc["gateways"].([]any); len(gws) != 1 || gws[0].(map[string]any)["ip"] != "127.0.0.1" || gws[0].(map[string]any)["accounts"].(float64) != 20 {
		t.Errorf("/readyz gateways: %v", cc["gateways"])
	}
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+DemoKey)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "\nkabuto_gateway_addresses 1\n") {
			t.Errorf("/metrics: %d, no kabuto_gateway_addresses 1", resp.StatusCode)
		}
	}

	// The analyst console's home page carries the warning.
	form := url.Values{"key": {DemoKey}}
	req, _ = http.NewRequest("POST", base+"/console/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Value != "" {
			session = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == nil {
		t.Fatalf("console sign-in: %d %v", resp.StatusCode, resp.Cookies())
	}
	req, _ = http.NewRequest("GET", base+"/console", nil)
	req.AddCookie(session)
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Customers' context missing") || !strings.Contains(string(body), "X-Kabuto-Client-IP") {
		t.Errorf("console home without the gateway warning: %d\n%s", resp.StatusCode, body)
	}
}
