package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/store"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDemo runs `kabuto demo` for real and returns its base URL once it
// says it is running.
func startDemo(t *testing.T, extra ...string) string {
	base, _ := startDemoIn(t, extra...)
	return base
}

// startDemoIn is startDemo that also returns the demo's data directory.
func startDemoIn(t *testing.T, extra ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := freeAddr(t)
	var out, errs syncBuffer
	done := make(chan int, 1)
	dir := t.TempDir()
	args := append([]string{"demo", "--addr", addr, "--data", dir, "--log-level", "warn"}, extra...)
	start := time.Now()
	go func() { done <- Run(ctx, args, &out, &errs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("demo exited %d: %s", code, errs.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("demo did not shut down")
		}
	})
	for !strings.Contains(out.String(), "Kabuto demo is running") {
		select {
		case code := <-done:
			t.Fatalf("demo exited %d: %s", code, errs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("demo not serving after 15 s: %s %s", out.String(), errs.String())
		}
	}
	t.Logf("demo serving after %v", time.Since(start).Round(time.Millisecond))
	return "http://" + addr, dir
}

// customer is the context the README's calls send: C0000001's laptop at home.
var customer = map[string]string{"X-Kabuto-Session": "demo-s1", "X-Kabuto-Device": "demo-laptop", "X-Kabuto-Client-IP": "192.0.2.70", "X-Kabuto-UA": "curl", "X-Kabuto-Channel": "api"}

func call(t *testing.T, method, url, key, idem, body string, headers ...map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for _, h := range headers {
		for k, v := range h {
			req.Header.Set(k, v)
		}
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// TestDemoEndToEnd starts the real demo and walks the README's examples:
// list an account, place an order that fills, withdraw; then checks that
// malformed requests are refused with 4xx and change nothing.
func TestDemoEndToEnd(t *testing.T) {
	base := startDemo(t, "--customers", "300")
	api := base + "/api/v1"
	code, acct := call(t, "GET", api+"/accounts/C0000001", DemoKey, "", "")
	if code != 200 || acct["account"] != "C0000001" {
		t.Fatalf("account: %d %v", code, acct)
	}
	cash := acct["cash_jpy"].(float64)
	// Without a passkey sign-in the guard asks for one before money leaves.
	code, m := call(t, "POST", api+"/accounts/C0000001/withdrawals", DemoKey, "w0", `{"amount_jpy":10000}`, customer)
	if code != 403 || m["error"] != "step_up_required" || m["factor"] != "phishing_resistant" {
		t.Fatalf("withdrawal before sign-in: %d %v", code, m)
	}
	// The brokerage's front door runs the passkey step-up for this very
	// withdrawal and says so with the server's challenge; a step-up for
	// another amount does not count.
	proof := stepUpProof(t, m)
	wrong := map[string]string{"X-Kabuto-Step-Up": "phishing_resistant:" + strings.Repeat("0", 64)}
	if code, m := call(t, "POST", api+"/accounts/C0000001/withdrawals", DemoKey, "w0b", `{"amount_jpy":10000}`, customer, wrong); code != 403 || m["error"] != "step_up_required" {
		t.Fatalf("withdrawal with a step-up for something else: %d %v", code, m)
	}
	if code, m := call(t, "POST", api+"/accounts/C0000001/withdrawals", DemoKey, "w0c", `{"amount_jpy":10000}`, customer, proof); code != 201 || m["status"] != "sent" {
		t.Fatalf("withdrawal with its step-up: %d %v", code, m)
	}
	cash -= 10000
	// The brokerage reports the customer's passkey sign-in.
	login := fmt.Sprintf(`{"id":"login-1","type":"login","time":%q,"account":"C0000001","session":"demo-s1","ip":"192.0.2.70","asn":2516,"country":"JP","device":"demo-laptop","ua":"curl","channel":"api","method":"passkey","factors":["passkey"],"ok":true}`,
		time.Now().Format(time.RFC3339))
	code, m = call(t, "POST", api+"/events", DemoKey, "", login)
	if ds, _ := m["decisions"].([]any); code != 200 || len(ds) != 1 || ds[0].(map[string]any)["action"] != "allow" {
		t.Fatalf("login: %d %v", code, m)
	}
	// One bad record refuses the whole batch, naming it and its field, and
	// the good record before it is not processed either.
	// (A withdrawal's decision is stored before the call returns, so its
	// absence below is proof, not timing.)
	good := `{"id":"w-batch","type":"withdrawal","time":"2025-04-08T09:00:00+09:00","account":"C0000001","session":"demo-s1","amount_jpy":1000,"bank_hash":"b"}`
	badRecord := `{"id":"o-bad","type":"order","time":"2025-04-08T09:00:00+09:00","account":"C0000001","order_id":"x","symbol":"7203","side":"buy","qty":"many","price_type":"market","account_kind":"cash"}`
	code, m = call(t, "POST", api+"/events", DemoKey, "", "["+good+","+badRecord+"]")
	if code != 400 || m["error"] != "invalid_field" || !strings.HasPrefix(m["message"].(string), "record 2: field qty") {
		t.Fatalf("bad batch: %d %v", code, m)
	}
	if code, m := call(t, "GET", api+"/decisions/w-batch", DemoKey, "", ""); code != 404 {
		t.Fatalf("a record of the refused batch was decided: %d %v", code, m)
	}
	// The same good record alone is decided and stored at once.
	if code, m := call(t, "POST", api+"/events", DemoKey, "", good); code != 200 {
		t.Fatalf("good record alone: %d %v", code, m)
	}
	if code, m := call(t, "GET", api+"/decisions/w-batch", DemoKey, "", ""); code != 200 || m["type"] != "withdrawal" {
		t.Fatalf("decision of the good record: %d %v", code, m)
	}
	code, o := call(t, "POST", api+"/accounts/C0000001/orders", DemoKey, "o1", `{"symbol":"7203","side":"buy","qty":100,"price_type":"market","account_kind":"cash"}`, customer)
	if code != 201 || o["status"] != "filled" {
		t.Fatalf("order: %d %v", code, o)
	}
	code, o2 := call(t, "POST", api+"/accounts/C0000001/orders", DemoKey, "o1", `{"symbol":"7203","side":"buy","qty":100,"price_type":"market","account_kind":"cash"}`, customer)
	if code != 201 || o2["order_id"] != o["order_id"] {
		t.Fatalf("retried order: %d %v", code, o2)
	}
	code, w := call(t, "POST", api+"/accounts/C0000001/withdrawals", DemoKey, "w1", `{"amount_jpy":10000}`, customer)
	if code != 201 || w["status"] != "sent" {
		t.Fatalf("withdrawal: %d %v", code, w)
	}
	_, acct = call(t, "GET", api+"/accounts/C0000001", DemoKey, "", "")
	if want := cash - o["filled_jpy"].(float64) - 10000; acct["cash_jpy"].(float64) != want {
		t.Errorf("cash %v, want %v", acct["cash_jpy"], want)
	}
	bad := []struct {
		method, path, key, idem, body string
		code                          int
		reason                        string
	}{
		{"GET", "/accounts/C0000001", "", "", "", 401, "unauthenticated"},
		{"GET", "/accounts/C0000001", "kb_wrong_key_123", "", "", 401, "unauthenticated"},
		{"GET", "/accounts/NOPE", DemoKey, "", "", 404, "unknown_account"},
		{"POST", "/accounts/C0000001/withdrawals", DemoKey, "", `{"amount_jpy":100}`, 400, "idempotency_key_required"},
		{"POST", "/accounts/C0000001/withdrawals", DemoKey, "b1", `{"amount_jpy":"100"}`, 400, "invalid_field"},
		{"POST", "/accounts/C0000001/withdrawals", DemoKey, "b2", `{"amount_jpy":100,"to":"attacker"}`, 400, "invalid_field"},
		{"POST", "/accounts/C0000001/withdrawals", DemoKey, "b3", `{"amount_jpy":-5}`, 400, "invalid_field"},
		{"POST", "/accounts/C0000001/withdrawals", DemoKey, "b4", `{"amount_jpy":`, 400, "bad_request"},
		{"POST", "/accounts/C0000001/withdrawals", DemoKey, "b5", `{"amount_jpy":999999999999}`, 409, "insufficient_cash"},
		{"POST", "/accounts/C0000001/withdrawals", DemoKey, "w1", `{"amount_jpy":20000}`, 422, "idempotency_key_reused"},
		{"POST", "/accounts/C0000001/orders", DemoKey, "b6", `{"symbol":"7203","side":"buy","qty":150,"price_type":"market","account_kind":"cash"}`, 400, "bad_lot"},
		{"GET", "/accounts?limit=0", DemoKey, "", "", 400, "invalid_field"},
	}
	for _, b := range bad {
		code, m := call(t, b.method, api+b.path, b.key, b.idem, b.body, customer)
		if code != b.code || m["error"] != b.reason || m["message"] == "" {
			t.Errorf("%s %s %s: got %d %v, want %d %s", b.method, b.path, b.body, code, m, b.code, b.reason)
		}
	}
	_, after := call(t, "GET", api+"/accounts/C0000001", DemoKey, "", "")
	if after["cash_jpy"] != acct["cash_jpy"] {
		t.Errorf("refused requests changed cash: %v → %v", acct["cash_jpy"], after["cash_jpy"])
	}
	if code, _ := call(t, "GET", base+"/metrics", DemoKey, "", ""); code != 200 {
		t.Errorf("GET /metrics with the admin key: %d", code)
	}
	for _, p := range []string{"/healthz", "/readyz", "/api/v1/openapi.json", "/"} {
		resp, err := http.Get(base + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
	// The front page leads customers, analysts and integrators somewhere
	// real: every link on it answers.
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	home, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	links := regexp.MustCompile(`href="(/[^"]*)"`).FindAllStringSubmatch(string(home), -1)
	if len(links) < 4 || strings.Contains(string(home), "not built") {
		t.Errorf("the front page has %d links: %s", len(links), home)
	}
	for _, l := range links {
		resp, err := http.Get(base + l[1])
		// The console answers a stranger with its sign-in form (401).
		if err != nil || resp.StatusCode != 200 && !(l[1] == "/console" && resp.StatusCode == 401) {
			t.Errorf("the front page's link %s: %v %v", l[1], resp, err)
			continue
		}
		resp.Body.Close()
	}
	// The stream holds every record, each meeting the spec.
	req, _ := http.NewRequest("GET", api+"/stream?account=C0000001", nil)
	req.Header.Set("Authorization", "Bearer "+DemoKey)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	types := regexp.MustCompile(`"type":"(\w+)"`).FindAllStringSubmatch(string(body), -1)
	var got []string
	for _, m := range types {
		got = append(got, m[1])
	}
	// The refused withdrawals (step-up, insufficient cash) were decided, so they are in the stream too.
	if fmt.Sprint(got) != "[account withdrawal withdrawal withdrawal order fill withdrawal withdrawal]" {
		t.Errorf("stream types %v", got)
	}
}

func TestCommandLineErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"demo", "--customers", "0"}, 2, "--customers 0"},
		{[]string{"serve", "--market-hours", "sometimes", "--data", "x"}, 2, "--market-hours"},
		{[]string{"serve", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"apikey", "--data", "x"}, 2, "give one of --list, --create NAME or --revoke ID"},
		{[]string{"replay", "--in", "x", "--out", "y", "--hold-proceeds", "a fortnight"}, 2, "hold-proceeds"},
		{[]string{"version"}, 0, ""},
		{[]string{"serve", "--help"}, 0, ""},
	} {
		var out, errs bytes.Buffer
		code := Run(context.Background(), tt.args, &out, &errs)
		if code != tt.code || !strings.Contains(errs.String(), tt.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, errs.String(), tt.code, tt.msg)
		}
	}
	t.Setenv("KABUTO_LOG_LEVEL", "loud")
	var out, errs bytes.Buffer
	if code := Run(context.Background(), []string{"migrate", "--data", t.TempDir()}, &out, &errs); code != 2 || !strings.Contains(errs.String(), "loud") {
		t.Errorf("bad env: %d %q", code, errs.String())
	}
}

// TestSelfLockHoldsOnTheAPI: the customer stops everything from the sign-in
// page without signing in (account plus a registered contact); the
// brokerage's API then refuses orders, withdrawals and bank changes too.
func TestSelfLockHoldsOnTheAPI(t *testing.T) {
	base := startDemo(t, "--customers", "50")
	api := base + "/api/v1"
	_, acct := call(t, "GET", api+"/accounts/C0000002", DemoKey, "", "")
	email, _ := acct["email"].(string)
	resp, err := http.Get(base + "/portal/lock")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var cookies []string
	for _, c := range resp.Cookies() {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the lock page (%d)", resp.StatusCode)
	}
	form := "account=C0000002&contact=" + url.QueryEscape(email) + "&csrf=" + url.QueryEscape(string(m[1]))
	req, _ := http.NewRequest("POST", base+"/portal/lock", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", strings.Join(cookies, "; "))
	req.Header.Set("Origin", strings.Replace(base, "127.0.0.1", "localhost", 1)) // the portal's origin
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("lock from the sign-in page: %d", resp.StatusCode)
	}
	for path, body := range map[string]string{
		"/accounts/C0000002/orders":      `{"symbol":"7203","side":"buy","qty":100,"price_type":"market","account_kind":"cash"}`,
		"/accounts/C0000002/withdrawals": `{"amount_jpy":1000}`,
	} {
		if code, m := call(t, "POST", api+path, DemoKey, "k"+path, body); code != 403 || m["error"] != "account_locked" {
			t.Errorf("%s after the self-lock: %d %v", path, code, m)
		}
	}
	if code, m := call(t, "PUT", api+"/accounts/C0000002/bank", DemoKey, "kb", `{"bank":"Attacker Bank 1"}`); code != 403 || m["error"] != "account_locked" {
		t.Errorf("bank change after the self-lock: %d %v", code, m)
	}
}

// TestHeldWithdrawalTellsTheCustomer: a withdrawal right after a bank
// change is held for an analyst (202), its cash reserved, and the customer
// is told in Japanese or English, in the same transaction.
func TestHeldWithdrawalTellsTheCustomer(t *testing.T) {
	base, dir := startDemoIn(t, "--customers", "50")
	api := base + "/api/v1"
	login := fmt.Sprintf(`{"id":"login-h","type":"login","time":%q,"account":"C0000001","session":"demo-s1","ip":"192.0.2.70","asn":2516,"country":"JP","device":"demo-laptop","ua":"curl","channel":"api","method":"passkey","factors":["passkey"],"ok":true}`,
		time.Now().Format(time.RFC3339))
	if code, m := call(t, "POST", api+"/events", DemoKey, "", login); code != 200 {
		t.Fatalf("login: %d %v", code, m)
	}
	code, m := call(t, "PUT", api+"/accounts/C0000001/bank", DemoKey, "b1", `{"bank":"Sony Bank 001-7654321"}`, customer)
	if code == 403 && m["error"] == "step_up_required" { // the front door's passkey step-up for this change
		code, m = call(t, "PUT", api+"/accounts/C0000001/bank", DemoKey, "b2", `{"bank":"Sony Bank 001-7654321"}`, customer,
			stepUpProof(t, m))
	}
	if code != 200 {
		t.Fatalf("bank change: %d %v", code, m)
	}
	code, m = call(t, "POST", api+"/accounts/C0000001/withdrawals", DemoKey, "w1", `{"amount_jpy":50000}`, customer)
	if code == 403 && m["error"] == "step_up_required" {
		code, m = call(t, "POST", api+"/accounts/C0000001/withdrawals", DemoKey, "w2", `{"amount_jpy":50000}`, customer,
			stepUpProof(t, m))
	}
	if code != 202 || m["error"] != "held_for_review" {
		t.Fatalf("withdrawal after a bank change: %d %v", code, m)
	}
	_, acct := call(t, "GET", api+"/accounts/C0000001", DemoKey, "", "")
	if acct["reserved_jpy"].(float64) < 50000 {
		t.Errorf("held withdrawal's cash not reserved: %v", acct["reserved_jpy"])
	}
	db, err := store.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	var body string
	err = db.QueryRowContext(context.Background(), `SELECT COUNT(*), MAX(body) FROM outbox WHERE account = 'C0000001' AND kind = 'held_for_review'`).Scan(&n, &body)
	if err != nil || n != 1 || !strings.Contains(body, "¥50,000") {
		t.Errorf("held notice: %d %v %q", n, err, body)
	}
	// The notice names the withdrawal in the customer's own language.
	if ja := strings.Contains(body, "様"); ja && !strings.Contains(body, "への出金") || !ja && !strings.Contains(body, "a withdrawal to ") {
		t.Errorf("held notice does not name the withdrawal in the customer's language: %q", body)
	}
}
