//go:build unix

package cli

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// envCrashChild holds the arguments of the kabuto command (JSON) when the
// test binary runs as TestCrashRecovery's server.
const envCrashChild = "KABUTO_TEST_CRASH_CHILD"

// TestCrashChild is the server of TestCrashRecovery: the test runs the
// test binary again with only this test and KABUTO_TEST_CRASH_CHILD set,
// so that the server is a process of its own that SIGKILL can end
// mid-write. It runs the kabuto command given and exits with its code.
func TestCrashChild(t *testing.T) {
	v := os.Getenv(envCrashChild)
	if v == "" {
		t.Skip("the server of TestCrashRecovery; runs only as its child process")
	}
	var args []string
	if err := json.Unmarshal([]byte(v), &args); err != nil {
		t.Fatal(err)
	}
	os.Exit(Run(context.Background(), args, os.Stdout, os.Stderr))
}

// TestCrashRecovery kills the real server with SIGKILL three times while
// customers place orders and withdraw money concurrently, each action with
// an idempotency key, and starts it again on the same data each time.
// Every key is retried until it gets an answer. Then each accepted action
// executed exactly once (one order or withdrawal, one ledger entry), and
// every account's cash and every position equal the opening entries plus
// the ledger. On SQLite and on PostgreSQL.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills the server four times")
	}
	t.Run("sqlite", func(t *testing.T) { crashRecovery(t, []string{"--data", t.TempDir()}) })
	t.Run("postgres", func(t *testing.T) { crashRecovery(t, []string{"--db", postgresSchema(t)}) })
}

// postgresSchema returns the URL of a new, empty PostgreSQL schema, dropped
// at the end of the test, or skips the test without KABUTO_TEST_POSTGRES.
func postgresSchema(t *testing.T) string {
	base := os.Getenv(storetest.EnvPostgres)
	if base == "" {
		t.Skipf("PostgreSQL not tested: set %s=postgres://user@host:5432/db?sslmode=disable to run this test on PostgreSQL too", storetest.EnvPostgres)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "crash_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("%s=%s: %v", storetest.EnvPostgres, base, err)
	}
	t.Cleanup(func() {
		if a, err := sql.Open("pgx", base); err == nil {
			a.Exec("DROP SCHEMA " + schema + " CASCADE")
			a.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// crashServer is one run of the server as a child process.
type crashServer struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

func startCrashServer(t *testing.T, args ...string) *crashServer {
	t.Helper()
	js, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashChild+"="+string(js))
	s := &crashServer{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.kill() })
	return s
}

// kill ends the server with SIGKILL and waits until it is gone.
func (s *crashServer) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// waitReady polls /readyz until the server answers ready, failing the
// test if the server exits or is not ready by the deadline.
func (s *crashServer) waitReady(t *testing.T, base string, deadline time.Time) {
	t.Helper()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	c := &http.Client{Timeout: time.Second}
	for {
		if resp, err := c.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-s.done:
			t.Fatalf("server exited: %s", s.out.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %s", s.out.String())
		}
	}
}

// crashAction is one customer action with its idempotency key and the
// answer it finally got.
type crashAction struct {
	key, account, path, body string
	withdrawal               bool
	code                     int
	id                       string // the order or withdrawal, when accepted
	reason                   string // the error code of a refusal
	tries                    int
}

func crashRecovery(t *testing.T, dbArgs []string) {
	deadline := time.Now().Add(4 * time.Minute)
	addr := freeAddr(t)
	base := "http://" + addr
	api := base + "/api/v1"

	// The demo opens the customers; it is killed as soon as it serves.
	demo := startCrashServer(t, append([]string{"demo", "--addr", addr, "--customers", "40", "--log-level", "warn"}, dbArgs...)...)
	demo.waitReady(t, base, deadline)
	demo.kill()
	var out, errs syncBuffer
	if code := Run(context.Background(), append([]string{"apikey", "--create", "crash-test", "--scopes", "broker,events"}, dbArgs...), &out, &errs); code != 0 {
		t.Fatalf("apikey: %d %s", code, errs.String())
	}
	m := regexp.MustCompile(`secret: (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no secret in %q", out.String())
	}
	key := m[1]
	serve := func() *crashServer {
		s := startCrashServer(t, append([]string{"serve", "--addr", addr, "--market-hours", "always", "--log-level", "warn"}, dbArgs...)...)
		s.waitReady(t, base, deadline)
		return s
	}
	srv := serve()
	start := time.Now()

	const accounts, perAccount = 16, 12
	ctxOf := func(i int) map[string]string {
		return map[string]string{"X-Kabuto-Session": fmt.Sprintf("crash-s%d", i), "X-Kabuto-Device": fmt.Sprintf("crash-dev-%d", i),
			"X-Kabuto-Client-IP": fmt.Sprintf("192.0.2.%d", 10+i), "X-Kabuto-UA": "crash-test", "X-Kabuto-Channel": "api", "X-Kabuto-ASN": "2516", "X-Kabuto-Country": "JP"}
	}
	// Each customer signs in with a passkey at the brokerage's front
	// door, so that the guard lets their withdrawals through.
	for i := 1; i <= accounts; i++ {
		login := fmt.Sprintf(`{"id":"crash-login-%d","type":"login","time":%q,"account":"C%07d","session":"crash-s%d","ip":"192.0.2.%d","asn":2516,"country":"JP","device":"crash-dev-%d","ua":"crash-test","channel":"api","method":"passkey","factors":["passkey"],"ok":true}`,
			i, time.Now().Format(time.RFC3339Nano), i, i, 10+i, i)
		if code, m := call(t, "POST", api+"/events", key, "", login); code != 200 {
			t.Fatalf("login %d: %d %v", i, code, m)
		}
	}
	var acts [][]*crashAction
	total := 0
	for i := 1; i <= accounts; i++ {
		var list []*crashAction
		for k := range perAccount {
			a := &crashAction{key: fmt.Sprintf("crash-%d-%d", i, k), account: fmt.Sprintf("C%07d", i)}
			if k%3 == 2 {
				a.withdrawal, a.path, a.body = true, "/withdrawals", fmt.Sprintf(`{"amount_jpy":%d}`, 1000+k)
			} else {
				a.path, a.body = "/orders", `{"symbol":"9432","side":"buy","qty":100,"price_type":"market","account_kind":"cash"}`
			}
			list = append(list, a)
			total++
		}
		acts = append(acts, list)
	}

	// The server, and the workers' view of whether it is up: a worker whose
	// request failed waits for the restart instead of spinning.
	var mu sync.Mutex
	up := make(chan struct{})
	close(up)
	current := srv
	var answered atomic.Int64
	client := &http.Client{Timeout: 20 * time.Second}
	send := func(a *crashAction, i int) (int, map[string]any, error) {
		req, _ := http.NewRequest("POST", api+"/accounts/"+a.account+a.path, strings.NewReader(a.body))
		for k, v := range ctxOf(i) {
			req.Header.Set(k, v)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Idempotency-Key", a.key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, nil, err
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		return resp.StatusCode, m, nil
	}
	var wg sync.WaitGroup
	failed := make(chan string, accounts)
	for i, list := range acts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, a := range list {
				for {
					mu.Lock()
					ready := up
					mu.Unlock()
					<-ready
					if time.Now().After(deadline) {
						failed <- fmt.Sprintf("%s: no answer after %d tries", a.key, a.tries)
						return
					}
					a.tries++
					code, m, err := send(a, i+1)
					if err != nil || code >= 500 {
						// the server is down or restarting: wait for it,
						// then send the same key again
						mu.Lock()
						ready = up
						mu.Unlock()
						select {
						case <-ready:
							// not known to be down yet: the killer is
							// restarting it, or it answered 5xx; poll
							// readiness before trying again
							c := &http.Client{Timeout: time.Second}
							tick := time.NewTicker(25 * time.Millisecond)
							for time.Now().Before(deadline) {
								if r, err := c.Get(base + "/readyz"); err == nil {
									r.Body.Close()
									if r.StatusCode == 200 {
										break
									}
								}
								<-tick.C
							}
							tick.Stop()
						default:
						}
						continue
					}
					a.code = code
					a.reason, _ = m["error"].(string)
					if code == http.StatusForbidden {
						if d, ok := m["decision"].(map[string]any); ok {
							a.reason += fmt.Sprint(d["reasons"])
						}
					}
					if code == http.StatusCreated {
						if a.withdrawal {
							a.id, _ = m["withdrawal_id"].(string)
						} else {
							a.id, _ = m["order_id"].(string)
						}
					}
					answered.Add(1)
					break
				}
			}
		}()
	}
	// Three times, once a quarter of the actions more are answered, the
	// server is killed mid-flight and started again on the same data.
	kills := 0
	for q := 1; q <= 3; q++ {
		tick := time.NewTicker(5 * time.Millisecond)
		for answered.Load() < int64(q*total/4) && time.Now().Before(deadline) {
			<-tick.C
		}
		tick.Stop()
		mu.Lock()
		up = make(chan struct{})
		mu.Unlock()
		current.kill()
		kills++
		current = serve()
		mu.Lock()
		close(up)
		mu.Unlock()
	}
	wg.Wait()
	close(failed)
	for f := range failed {
		t.Error(f)
	}
	if t.Failed() {
		t.FailNow()
	}
	current.kill()
	t.Logf("%d actions answered across %d kills in %v", total, kills, time.Since(start).Round(time.Millisecond))

	// The books, read from the database after the last kill.
	ctx := context.Background()
	var db *store.DB
	var err error
	if dbArgs[0] == "--db" {
		db, err = store.Open(ctx, dbArgs[1], "")
	} else {
		db, err = store.Open(ctx, "", dbArgs[1])
	}
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	orders, withdrawals := map[string]*crashAction{}, map[string]*crashAction{}
	codes, reasons := map[int]int{}, map[string]int{}
	retried := 0
	for _, list := range acts {
		for _, a := range list {
			codes[a.code]++
			if a.reason != "" {
				reasons[a.reason]++
			}
			if a.tries > 1 {
				retried++
			}
			if a.code != http.StatusCreated {
				continue
			}
			if a.id == "" {
				t.Errorf("%s accepted without an id", a.key)
				continue
			}
			set := orders
			if a.withdrawal {
				set = withdrawals
			}
			if set[a.id] != nil {
				t.Errorf("%s and %s answered with the same %s", a.key, set[a.id].key, a.id)
			}
			set[a.id] = a
		}
	}
	t.Logf("answers by status %v, refusals %v; %d actions sent more than once", codes, reasons, retried)
	if len(orders) == 0 || len(withdrawals) == 0 || retried == 0 {
		t.Fatalf("the test proved nothing: %d orders and %d withdrawals accepted, %d retried", len(orders), len(withdrawals), retried)
	}
	// Each accepted action executed once: one row, one ledger entry; and
	// nothing executed that was not accepted.
	for _, q := range []struct {
		table string
		set   map[string]*crashAction
	}{{"orders", orders}, {"withdrawals", withdrawals}} {
		rows, err := db.QueryContext(ctx, `SELECT t.id, (SELECT COUNT(*) FROM ledger l WHERE l.ref = t.id) FROM `+q.table+` t
			WHERE t.created_us >= $1 AND t.account LIKE 'C%'`, store.Micros(start))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for rows.Next() {
			var id string
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				t.Fatal(err)
			}
			seen[id] = true
			if q.set[id] == nil && n > 0 {
				t.Errorf("%s %s executed (%d ledger entries) but no key was answered with it", q.table, id, n)
			}
			if q.set[id] != nil && n != 1 {
				t.Errorf("%s %s (key %s): %d ledger entries, want 1", q.table, id, q.set[id].key, n)
			}
		}
		rows.Close()
		for id, a := range q.set {
			if !seen[id] {
				t.Errorf("key %s accepted as %s %s, which is not in the database", a.key, q.table, id)
			}
		}
	}
	// Every account's cash and shares are its opening plus its ledger.
	var bad int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts a
		WHERE a.cash_jpy <> (SELECT COALESCE(SUM(l.cash_jpy), 0) FROM ledger l WHERE l.account = a.id)`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("%d accounts whose cash is not their ledger's", bad)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT account, symbol, kind, SUM(qty) AS q FROM ledger WHERE symbol <> '' GROUP BY account, symbol, kind) l
		LEFT JOIN positions p ON p.account = l.account AND p.symbol = l.symbol AND p.kind = l.kind
		WHERE COALESCE(p.qty, 0) <> l.q`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("%d positions that are not their ledger's", bad)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM positions p WHERE p.qty <> (SELECT COALESCE(SUM(l.qty), 0) FROM ledger l
		WHERE l.account = p.account AND l.symbol = p.symbol AND l.kind = p.kind)`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("%d positions without their ledger entries", bad)
	}
}
