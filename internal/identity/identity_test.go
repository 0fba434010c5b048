package identity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/session"
	"github.com/kabuto-sec/kabuto/internal/softkey"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// cheap are argon2id parameters for tests that hash thousands of times.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32}

const origin = "http://localhost:8080"

func newService(t testing.TB, db *store.DB, c *clock.Fake, mod func(*Config)) *Service {
	t.Helper()
	cfg := Config{DB: db, Outbox: &notify.Outbox{}, Now: c.Now, RPID: "localhost", Origins: []string{origin}, Argon: cheap, PerIP: -1, PerNetwork: -1, PerAccount: -1, Queue: 4096}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func addAccount(t testing.TB, s *Service, db *store.DB, id, password string) {
	t.Helper()
	ctx := context.Background()
	_, err := db.ExecContext(ctx, `INSERT INTO accounts (id, name, locale, email, phone, email_hash, phone_hash, bank_label, bank_hash, opened, cash_jpy, created_us)
		VALUES ($1, 'Tanaka Taro', 'ja', $2, '090-0000-0000', 'e_x', 'p_x', 'Mizuho 001-1234567', 'b_x', '2020-01-01', 1000000, 0)`, id, id+"@example.jp")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Enrol(ctx, nil, id, "", Hash(password, s.cfg.Argon)); err != nil {
		t.Fatal(err)
	}
}

var home = session.Client{IP: "192.0.2.10", Network: "192.0.2.0/24", ASN: 4713, Country: "JP", UA: "Mozilla/5.0 Chrome/140", Device: "dev1"}

func TestHashVerify(t *testing.T) {
	h := Hash("correct horse battery", OWASP)
	if ok, err := Verify(h, "correct horse battery"); !ok || err != nil {
		t.Fatalf("Verify(right) = %v, %v", ok, err)
	}
	if ok, _ := Verify(h, "wrong horse battery"); ok {
		t.Fatal("wrong password verified")
	}
	for _, bad := range []string{"", "$argon2id$", "$argon2i$v=19$m=1,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=999999999,t=1,p=1$c2FsdHNhbHQ$" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if _, err := Verify(bad, "x"); !errors.Is(err, ErrBadHash) {
			t.Errorf("Verify(%q) err = %v, want ErrBadHash", bad, err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(Hash("pw", cheap), "pw")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA", "x")
	f.Fuzz(func(t *testing.T, encoded, pw string) {
		Verify(encoded, pw) // must not panic or run away with memory
	})
}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		pw   string
		ok   bool
		what string
	}{
		{"short", false, "too short"},
		{"password123!", false, "common with digits"},
		{"P@ssw0rd2025", false, "leet common"},
		{"tokyo2025!!", false, "place name and year"},
		{"qwertyuiop", false, "keyboard walk"},
		{"aaaaaaaaaaaa", false, "repeated"},
		{"abcdefghijk", false, "sequence"},
		{"abababababab", false, "short pattern"},
		{"C0000001-secret", false, "account id inside"},
		{"tanaka.taro-x9", false, "email local part inside"},
		{"kabuto-demo-2025", true, "demo password"},
		{"浅草の雷門で待ち合わせ", true, "Japanese passphrase"},
		{"violet-kettle-42-orbit", true, "passphrase"},
	} {
		err := CheckPassword(tc.pw, "C0000001", "tanaka.taro@example.jp")
		if (err == nil) != tc.ok {
			t.Errorf("%s: CheckPassword(%q) = %v, want ok=%v", tc.what, tc.pw, err, tc.ok)
		}
	}
}

// TestLockoutExactUnderConcurrency: 1,000 concurrent wrong passwords
// against one account lock it with exactly the threshold counted.
func TestLockoutExactUnderConcurrency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := clock.NewFake(time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST))
		s := newService(t, db, c, nil)
		addAccount(t, s, db, "C0000001", "right-password-9")
		ctx := context.Background()
		var wrong, locked, other atomic.Int64
		var wg sync.WaitGroup
		for i := range 1000 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.CheckPassword(ctx, "C0000001", fmt.Sprintf("guess-%d", i), home)
				switch e := reason.As(err); {
				case e != nil && e.Code == reason.Unauthenticated:
					wrong.Add(1)
				case e != nil && e.Code == reason.AccountLocked:
					locked.Add(1)
				default:
					other.Add(1)
					t.Errorf("unexpected: %v", err)
				}
			}()
		}
		wg.Wait()
		f, err := s.Factors(ctx, "C0000001")
		if err != nil {
			t.Fatal(err)
		}
		if f.Failed != 5 || f.Locked.IsZero() {
			t.Fatalf("after 1000 wrong passwords: failed=%d locked=%v; want exactly 5 and locked", f.Failed, f.Locked)
		}
		if wrong.Load() != 4 {
			t.Errorf("%d answers said wrong password; want 4 (the fifth locks)", wrong.Load())
		}
		if err := s.CheckPassword(ctx, "C0000001", "right-password-9", home); reason.As(err) == nil || reason.As(err).Code != reason.AccountLocked {
			t.Fatalf("right password after lock: %v, want account_locked", err)
		}
		var notices int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE account = 'C0000001' AND kind = 'locked'`).Scan(&notices)
		if notices != 1 {
			t.Errorf("%d lock notices, want 1", notices)
		}
		if err := s.Unlock(ctx, "C0000001", event.FactorEmailOTP, home); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckPassword(ctx, "C0000001", "right-password-9", home); err != nil {
			t.Fatalf("after unlock: %v", err)
		}
	})
}

// TestPerAccountCapLeavesRoom: with the default cap, a flood against one
// account takes at most PerAccount pool slots and others still sign in.
func TestPerAccountCapLeavesRoom(t *testing.T) {
	db := storetest.SQLite(t)
	c := clock.NewFake(time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST))
	s := newService(t, db, c, func(cfg *Config) {
		cfg.PerAccount = 2
		cfg.Workers = 2
		cfg.Queue = 8
		cfg.LockThreshold = 100000
		cfg.Argon = Params{Memory: 8 * 1024, Time: 1, Threads: 1, KeyLen: 32}
	})
	addAccount(t, s, db, "C0000001", "right-password-9")
	addAccount(t, s, db, "C0000002", "other-password-9")
	ctx := context.Background()
	var busy atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if e := reason.As(s.CheckPassword(ctx, "C0000001", "wrong-guess-xx", home)); e != nil && e.Code == reason.RateLimited {
				busy.Add(1)
			}
		}()
	}
	if err := s.CheckPassword(ctx, "C0000002", "other-password-9", home); err != nil {
		t.Fatalf("another customer's sign-in during the flood: %v", err)
	}
	wg.Wait()
	if busy.Load() == 0 {
		t.Error("no flood attempt was turned away by the per-account cap")
	}
}

func TestTOTPAcceptedOnce(t *testing.T) {
	db := storetest.SQLite(t)
	c := clock.NewFake(time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST))
	s := newService(t, db, c, nil)
	addAccount(t, s, db, "C0000001", "right-password-9")
	ctx := context.Background()
	secret, _, err := s.NewTOTP("C0000001")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ConfirmTOTP(ctx, "C0000001", secret, s.TOTPCode(secret)); err != nil {
		t.Fatal(err)
	}
	c.Advance(30 * time.Second)
	code := s.TOTPCode(secret)
	if err := s.VerifyTOTP(ctx, "C0000001", code); err != nil {
		t.Fatalf("fresh code: %v", err)
	}
	if err := s.VerifyTOTP(ctx, "C0000001", code); err == nil {
		t.Fatal("a relayed copy of the same code was accepted")
	}
	if err := s.VerifyTOTP(ctx, "C0000001", "000000"); err == nil {
		t.Fatal("wrong code accepted")
	}
}

func TestEmailCode(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := clock.NewFake(time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST))
		s := newService(t, db, c, nil)
		addAccount(t, s, db, "C0000001", "right-password-9")
		ctx := context.Background()
		if _, err := s.SendCode(ctx, "C0000001", "signin:x", "sign-in", home); err != nil {
			t.Fatal(err)
		}
		code := lastCode(t, db, "C0000001")
		if err := s.VerifyCode(ctx, "C0000001", "signin:y", code); err == nil {
			t.Fatal("code accepted for another purpose")
		}
		if err := s.VerifyCode(ctx, "C0000001", "signin:x", code); err != nil {
			t.Fatalf("right code: %v", err)
		}
		if err := s.VerifyCode(ctx, "C0000001", "signin:x", code); err == nil {
			t.Fatal("code accepted twice")
		}
		// Expiry and the five-try limit.
		s.SendCode(ctx, "C0000001", "signin:x", "sign-in", home)
		code = lastCode(t, db, "C0000001")
		for range 5 {
			s.VerifyCode(ctx, "C0000001", "signin:x", "999999x")
		}
		if err := s.VerifyCode(ctx, "C0000001", "signin:x", code); err == nil {
			t.Fatal("right code accepted after five wrong tries")
		}
		s.SendCode(ctx, "C0000001", "signin:x", "sign-in", home)
		code = lastCode(t, db, "C0000001")
		c.Advance(11 * time.Minute)
		if err := s.VerifyCode(ctx, "C0000001", "signin:x", code); err == nil {
			t.Fatal("expired code accepted")
		}
	})
}

func lastCode(t *testing.T, db *store.DB, account string) string {
	t.Helper()
	var body string
	if err := db.QueryRowContext(context.Background(), `SELECT body FROM outbox WHERE account = $1 AND kind = 'one_time_code' ORDER BY created_us DESC, id DESC LIMIT 1`, account).Scan(&body); err != nil {
		t.Fatal(err)
	}
	var code string
	for i := 0; i+6 <= len(body); i++ {
		ok := true
		for j := i; j < i+6; j++ {
			ok = ok && body[j] >= '0' && body[j] <= '9'
		}
		if ok && (i == 0 || body[i-1] == ' ') && (i+6 == len(body) || body[i+6] == '\n') {
			code = body[i : i+6]
			break
		}
	}
	if code == "" {
		t.Fatalf("no code in %q", body)
	}
	return code
}

func TestSelfLockScopes(t *testing.T) {
	for _, tc := range []struct {
		scope int
		op    Op
		stop  bool
	}{
		{1, Op{Kind: "order", Fund: true, Side: "buy"}, false},
		{1, Op{Kind: "order", Fund: true, Side: "sell"}, true},
		{1, Op{Kind: "order"}, true},
		{1, Op{Kind: "withdrawal"}, true},
		{1, Op{Kind: "signin"}, false},
		{2, Op{Kind: "order", Fund: true, Side: "sell"}, false},
		{2, Op{Kind: "withdrawal"}, false},
		{2, Op{Kind: "order"}, true},
		{3, Op{Kind: "order", Foreign: true}, true},
		{3, Op{Kind: "order"}, false},
		{4, Op{Kind: "order"}, true},
		{4, Op{Kind: "withdrawal"}, false},
		{4, Op{Kind: "signin"}, false},
		{5, Op{Kind: "signin"}, true},
		{5, Op{Kind: "order"}, true},
		{0, Op{Kind: "order"}, false},
	} {
		if got := Locked(tc.scope, tc.op); got != tc.stop {
			t.Errorf("Locked(%d, %+v) = %v, want %v", tc.scope, tc.op, got, tc.stop)
		}
	}
}

// newSoftKey registers a software passkey for account through the
// service's own registration ceremony, as a browser at origin would.
func newSoftKey(t testing.TB, s *Service, account string) *softkey.Key {
	t.Helper()
	ctx := context.Background()
	id, opts, err := s.BeginRegistration(ctx, account, "S-enrol")
	if err != nil {
		t.Fatal(err)
	}
	k, body, err := softkey.Create(opts.Response, origin)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRegistration(ctx, account, "S-enrol", id, body, "", home); err != nil {
		t.Fatalf("registration: %v", err)
	}
	return k
}

// assert signs opts as a page at origin; a key used on another origin
// than its RP's models a client that does not stop it.
func assert(t testing.TB, k *softkey.Key, opts *protocol.CredentialAssertion, at string) []byte {
	t.Helper()
	body, err := k.GetAs(opts.Response, at)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestPasskeySignInAndStepUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := clock.NewFake(time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST))
		s := newService(t, db, c, nil)
		addAccount(t, s, db, "C0000001", "right-password-9")
		ctx := context.Background()
		k := newSoftKey(t, s, "C0000001")

		// A password flood locks password sign-in only.
		for i := range 10 {
			s.CheckPassword(ctx, "C0000001", fmt.Sprint("guess-", i), home)
		}
		id, opts, err := s.BeginSignIn(ctx, "dev1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.FinishSignIn(ctx, "dev1", id, assert(t, k, opts, "http://localhost:9999")); err == nil {
			t.Fatal("assertion made on another origin accepted")
		}
		id, opts, _ = s.BeginSignIn(ctx, "dev1")
		good := assert(t, k, opts, origin)
		acct, err := s.FinishSignIn(ctx, "dev1", id, good)
		if err != nil || acct != "C0000001" {
			t.Fatalf("passkey sign-in while password sign-in is locked: %q, %v", acct, err)
		}
		if _, err := s.FinishSignIn(ctx, "dev1", id, good); err == nil {
			t.Fatal("the same assertion accepted twice")
		}

		// Step-up: bound to the action, once, in time.
		sid, sopts, err := s.BeginStepUp(ctx, "C0000001", "S1", "binding-A", map[string]any{"kind": "withdraw"})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.FinishStepUp(ctx, "C0000001", "S2", sid, assert(t, k, sopts, origin)); err == nil {
			t.Fatal("step-up finished by another session")
		}
		sid, sopts, _ = s.BeginStepUp(ctx, "C0000001", "S1", "binding-A", map[string]any{"kind": "withdraw"})
		a := assert(t, k, sopts, origin)
		b, _, err := s.FinishStepUp(ctx, "C0000001", "S1", sid, a)
		if err != nil || b != "binding-A" {
			t.Fatalf("step-up: %q, %v", b, err)
		}
		if _, _, err := s.FinishStepUp(ctx, "C0000001", "S1", sid, a); err == nil {
			t.Fatal("step-up assertion replayed")
		}
		// An assertion for one action does not finish another's ceremony.
		sidB, _, _ := s.BeginStepUp(ctx, "C0000001", "S1", "binding-B", map[string]any{"kind": "bank"})
		if _, _, err := s.FinishStepUp(ctx, "C0000001", "S1", sidB, a); err == nil {
			t.Fatal("an assertion for action A finished action B's step-up")
		}
		sid, sopts, _ = s.BeginStepUp(ctx, "C0000001", "S1", "binding-A", nil)
		c.Advance(4 * time.Minute)
		if _, _, err := s.FinishStepUp(ctx, "C0000001", "S1", sid, assert(t, k, sopts, origin)); err == nil {
			t.Fatal("step-up accepted after it expired")
		}
	})
}

// TestLoginChallenge: what a challenged sign-in still needs, for the
// portal and the simulator alike.
func TestLoginChallenge(t *testing.T) {
	pr, mfa := event.FactorPhishingResistant, event.FactorMFA
	withKey, interim := Factors{Password: true, Passkeys: 1, EmailOTP: true}, Factors{Password: true, EmailOTP: true}
	for _, tc := range []struct {
		name    string
		factor  string
		factors []string
		f       Factors
		want    string
	}{
		{"passkey sign-in meets any challenge", pr, []string{event.FactorPasskey}, withKey, ""},
		{"passkey holder signed in with password and code", pr, []string{event.FactorPassword, event.FactorEmailOTP}, withKey, "guard_wants_passkey"},
		{"interim mode: the code proved meets phishing_resistant", pr, []string{event.FactorPassword, event.FactorTOTP}, interim, ""},
		{"interim mode without a code", pr, []string{event.FactorPassword}, interim, "guard_wants_passkey"},
		{"mfa asked, code proved", mfa, []string{event.FactorPassword, event.FactorSMSOTP}, interim, ""},
		{"mfa asked, password only", mfa, []string{event.FactorPassword}, interim, "guard_wants_mfa"},
		{"mfa asked, passkey", mfa, []string{event.FactorPasskey}, withKey, ""},
	} {
		if got := LoginChallenge(tc.factor, Proved(tc.factors), tc.f); got != tc.want {
			t.Errorf("%s: LoginChallenge = %q, want %q", tc.name, got, tc.want)
		}
	}
}
