package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/store"
)

// The abuse cases of the API and the analyst console, run against the real
// `kabuto demo` and `kabuto serve` (issue 12, findings 7, 8 and 11). Each
// is named after the OWASP ASVS 4.0 requirement it checks where one
// applies.

// stepUpProof returns the X-Kabuto-Step-Up value a brokerage sends after it
// has run the step-up asked for in a step_up_required answer m: the factor
// and the proof the server issued for that very action.
func stepUpProof(t *testing.T, m map[string]any) map[string]string {
	t.Helper()
	if m["error"] != "step_up_required" {
		t.Fatalf("not a step-up answer: %v", m)
	}
	factor, _ := m["factor"].(string)
	if su, ok := m["step_up"].(map[string]any); ok {
		if p, _ := su["challenge"].(string); p != "" {
			return map[string]string{"X-Kabuto-Step-Up": factor + ":" + p}
		}
	}
	b, _ := m["binding"].(string)
	return map[string]string{"X-Kabuto-Step-Up": factor + ":" + b}
}

// TestASVS2_8_4_StepUpProofIsSingleUse: the careless integrator keeps the
// X-Kabuto-Step-Up header of one confirmed withdrawal and sends it again
// with the next ones (before: one proof covered every withdrawal of the
// same amount in the session). A proof opens exactly one action, the one
// it was issued for, once, even when sent by several requests at once.
func TestASVS2_8_4_StepUpProofIsSingleUse(t *testing.T) {
	base := startDemo(t, "--customers", "50")
	api := base + "/api/v1"
	withdraw := func(idem string, amount string, h ...map[string]string) (int, map[string]any) {
		return call(t, "POST", api+"/accounts/C0000001/withdrawals", DemoKey, idem, `{"amount_jpy":`+amount+`}`, append([]map[string]string{customer}, h...)...)
	}
	code, m := withdraw("r0", "10000")
	if code != 403 || m["error"] != "step_up_required" {
		t.Fatalf("withdrawal before sign-in: %d %v", code, m)
	}
	proof := stepUpProof(t, m)
	// The proof is not for another amount (and is spent by the try).
	if code, m := withdraw("r1", "20000", proof); code != 403 || m["error"] != "step_up_required" {
		t.Fatalf("a proof for ¥10,000 opened ¥20,000: %d %v", code, m)
	}
	code, m = withdraw("r2", "10000")
	proof = stepUpProof(t, m)
	if code, m := withdraw("r3", "10000", proof); code != 201 || m["status"] != "sent" {
		t.Fatalf("withdrawal with its proof: %d %v", code, m)
	}
	// The same request again (same idempotency key) is answered from the
	// first, as before; it moves no more money.
	if code, m := withdraw("r3", "10000", proof); code != 201 || m["status"] != "sent" {
		t.Fatalf("retry of the confirmed withdrawal: %d %v", code, m)
	}
	for i := range 7 {
		if code, m := withdraw("replay"+string(rune('a'+i)), "10000", proof); code != 403 || m["error"] != "step_up_required" {
			t.Fatalf("replayed proof, withdrawal %d: %d %v", i+2, code, m)
		}
	}
	// The binding echoed back, as the header was once made, proves nothing.
	_, m = withdraw("e0", "10000")
	echo := map[string]string{"X-Kabuto-Step-Up": "phishing_resistant:" + m["binding"].(string)}
	if code, m := withdraw("e1", "10000", echo); code != 403 || m["error"] != "step_up_required" {
		t.Fatalf("echoed binding: %d %v", code, m)
	}
	// Eight requests racing with one fresh proof: exactly one goes through.
	_, m = withdraw("c0", "10000")
	proof = stepUpProof(t, m)
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _ := withdraw("race"+string(rune('a'+i)), "10000", proof); code == 201 {
				mu.Lock()
				sent++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if sent != 1 {
		t.Fatalf("one proof sent %d withdrawals", sent)
	}
	// Another API key cannot spend a proof issued to the demo key's caller,
	// nor can another session.
	_, m = withdraw("s0", "10000")
	proof = stepUpProof(t, m)
	other := map[string]string{"X-Kabuto-Session": "demo-s2"}
	if code, m := call(t, "POST", api+"/accounts/C0000001/withdrawals", DemoKey, "s1", `{"amount_jpy":10000}`, customer, other, proof); code != 403 || m["error"] != "step_up_required" {
		t.Fatalf("proof of session demo-s1 used in demo-s2: %d %v", code, m)
	}
}

// TestASVS2_10_2_DemoKeyOnlyInTheDemo: the demo's well-known key is a
// default credential; `kabuto serve` on the demo's data must not accept
// it, on any address, neither on the API nor at the analyst console.
func TestASVS2_10_2_DemoKeyOnlyInTheDemo(t *testing.T) {
	demo, dir := startDemoIn(t, "--customers", "20")
	if code, _ := call(t, "GET", demo+"/api/v1/accounts/C0000001", DemoKey, "", ""); code != 200 {
		t.Fatalf("the demo refuses its own key: %d", code)
	}
	base := startServe(t, "--data", dir)
	if code, m := call(t, "GET", base+"/api/v1/accounts/C0000001", DemoKey, "", ""); code != 401 || m["error"] != "unauthenticated" {
		t.Errorf("kabuto serve on the demo's data accepts the demo key: %d %v", code, m)
	}
	form := url.Values{"key": {DemoKey}}
	req, _ := http.NewRequest("POST", base+"/console/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("kabuto serve's console signs in with the demo key: %d", resp.StatusCode)
	}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// startServe runs `kabuto serve` for real on a free loopback address until
// the test ends, and returns its base URL once it answers /healthz.
func startServe(t *testing.T, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := freeAddr(t)
	var out, errs syncBuffer
	done := make(chan int, 1)
	args := append([]string{"serve", "--addr", addr, "--log-level", "warn", "--warm-days", "0"}, extra...)
	go func() { done <- Run(ctx, args, &out, &errs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d: %s", code, errs.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not shut down")
		}
	})
	base := "http://" + addr
	start := time.Now()
	for {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, errs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("serve not answering after 15 s: %s", errs.String())
		}
	}
}

// TestMetricsNeedAKey: /metrics tells an attacker how the guard answers
// (decisions by outcome, request counts by route); it is served only to
// an API key with the metrics or admin scope.
func TestMetricsNeedAKey(t *testing.T) {
	base, dir := startDemoIn(t, "--customers", "20")
	var out, errs bytes.Buffer
	if code := Run(context.Background(), []string{"apikey", "--data", dir, "--create", "prometheus", "--scopes", "metrics"}, &out, &errs); code != 0 {
		t.Fatalf("apikey: %d %s", code, errs.String())
	}
	metricsKey := regexp.MustCompile(`secret: (\S+)`).FindStringSubmatch(out.String())[1]
	out.Reset()
	if code := Run(context.Background(), []string{"apikey", "--data", dir, "--create", "core", "--scopes", "broker"}, &out, &errs); code != 0 {
		t.Fatalf("apikey: %d %s", code, errs.String())
	}
	brokerKey := regexp.MustCompile(`secret: (\S+)`).FindStringSubmatch(out.String())[1]
	for _, tt := range []struct {
		key  string
		code int
	}{{"", 401}, {"kb_not_a_key_at_all", 401}, {brokerKey, 403}, {metricsKey, 200}, {DemoKey, 200}} {
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		if tt.key != "" {
			req.Header.Set("Authorization", "Bearer "+tt.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("GET /metrics with %q: %d, want %d", tt.key, resp.StatusCode, tt.code)
		}
		if tt.code == 200 && !strings.Contains(string(body), "kabuto_http_requests_total") {
			t.Errorf("GET /metrics with %q: no metrics", tt.key)
		}
	}
}

// TestASVS2_2_1_ConsoleGuessesThrottled: a stranger guessing admin keys
// at the demo's console is made to wait after five failures, and the
// audit trail gets a few entries with counts, not one per guess (before:
// 40 guesses, 40 audit entries, no wait).
func TestASVS2_2_1_ConsoleGuessesThrottled(t *testing.T) {
	base, dir := startDemoIn(t, "--customers", "20")
	codes := map[int]int{}
	for i := range 40 {
		form := url.Values{"key": {"kb_guess_" + strings.Repeat("a", 10+i)}}
		req, _ := http.NewRequest("POST", base+"/console/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if codes[http.StatusUnauthorized] != 5 || codes[http.StatusTooManyRequests] != 35 {
		t.Errorf("40 guesses answered %v, want 5 × 401 then 429", codes)
	}
	db, err := store.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM audit WHERE action = 'console_login_failed'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 || n > 4 {
		t.Errorf("%d audit entries for 40 guesses", n)
	}
}
