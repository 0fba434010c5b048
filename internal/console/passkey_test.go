package console

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/kabuto-sec/kabuto/internal/analyst"
	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/cases"
	"github.com/kabuto-sec/kabuto/internal/server"
	"github.com/kabuto-sec/kabuto/internal/softkey"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// passkeyConsole is the console on the real server's mux, reached at
// http://localhost:PORT (passkeys need a host name).
type passkeyConsole struct {
	url    string
	db     *store.DB
	people *analyst.Store
}

func newPasskeyConsole(t *testing.T, db *store.DB, office ...*cases.Service) *passkeyConsole {
	t.Helper()
	keys := apikey.New(db)
	s := server.New(server.Config{DB: db, Keys: keys, Log: discard()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://localhost:" + strings.Split(ln.Addr().String(), ":")[1]
	New(Config{Keys: keys, DB: db, Alerts: alerts{}, Halts: halts{}, Tape: NewTape(10, 10), CheckKey: s.CheckKey, Log: discard(), Audit: audit.New(db),
		Passkeys: func() (string, []string) { return "localhost", []string{base} }, Office: first(office),
		Prices: func(sym string) (float64, bool) { return 1000, sym == "7203" || sym == "9999" }}).Mount(s.Mux())
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return &passkeyConsole{url: base, db: db, people: analyst.New(db, nil)}
}

func first(o []*cases.Service) *cases.Service {
	if len(o) == 0 {
		return nil
	}
	return o[0]
}

// post sends a ceremony request as the console's script does, from
// origin, and returns the status, the answer and the session cookie set.
func (pc *passkeyConsole) post(t *testing.T, path, origin string, body any) (int, map[string]any, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", pc.url+path, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(raw, &m)
	ck := ""
	if set := resp.Header.Get("Set-Cookie"); set != "" {
		ck = strings.Split(set, ";")[0]
	}
	return resp.StatusCode, m, ck
}

func (pc *passkeyConsole) get(t *testing.T, path, cookie string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", pc.url+path, nil)
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func creationOptions(t *testing.T, m map[string]any) protocol.PublicKeyCredentialCreationOptions {
	t.Helper()
	var o protocol.PublicKeyCredentialCreationOptions
	b, _ := json.Marshal(m["publicKey"])
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	// The browser decodes the user handle from base64url.
	if s, ok := o.User.ID.(string); ok {
		var id protocol.URLEncodedBase64
		if err := id.UnmarshalJSON([]byte(`"` + s + `"`)); err != nil {
			t.Fatal(err)
		}
		o.User.ID = id
	}
	return o
}

func requestOptions(t *testing.T, m map[string]any) protocol.PublicKeyCredentialRequestOptions {
	t.Helper()
	var o protocol.PublicKeyCredentialRequestOptions
	b, _ := json.Marshal(m["publicKey"])
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// enrolPasskey enrols a passkey with code and returns it and the session.
func (pc *passkeyConsole) enrolPasskey(t *testing.T, code string) (*softkey.Key, string) {
	t.Helper()
	status, begin, _ := pc.post(t, "/console/enrol/begin", pc.url, map[string]string{"code": code})
	if status != 200 {
		t.Fatalf("enrol begin: %d %v", status, begin)
	}
	key, cred, err := softkey.Create(creationOptions(t, begin), pc.url)
	if err != nil {
		t.Fatal(err)
	}
	status, done, ck := pc.post(t, "/console/enrol/finish", pc.url, map[string]any{"ceremony": begin["ceremony"], "credential": json.RawMessage(cred)})
	if status != 200 || ck == "" {
		t.Fatalf("enrol finish: %d %v", status, done)
	}
	return key, ck
}

// signInWith runs a passkey sign-in with key as a browser at origin and
// returns the status, the answer and the session cookie.
func (pc *passkeyConsole) signInWith(t *testing.T, key *softkey.Key, origin string, as bool) (int, map[string]any, string) {
	t.Helper()
	status, begin, _ := pc.post(t, "/console/passkey/begin", origin, map[string]string{})
	if status != 200 {
		return status, begin, ""
	}
	var cred []byte
	var err error
	if as {
		cred, err = key.GetAs(requestOptions(t, begin), origin)
	} else {
		cred, err = key.Get(requestOptions(t, begin), origin)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pc.post(t, "/console/passkey/finish", origin, map[string]any{"ceremony": begin["ceremony"], "credential": json.RawMessage(cred), "next": "/console/mail"})
}

// TestAnalystPasskeys: an analyst enrols a passkey with the one-time code
// `kabuto analyst --create` prints and signs in with it; the audit trail
// names the person. The attacks fail: a guessed, reused or expired code, a
// passkey used from a phishing page's origin, a replayed assertion, a
// cross-site ceremony, and a disabled analyst (whose open session ends).
func TestAnalystPasskeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pc := newPasskeyConsole(t, db)
		if _, err := pc.people.Create(ctx, "sato", analyst.RoleAnalyst, "operator:test"); err != nil {
			t.Fatal(err)
		}
		code, err := IssueEnrolment(ctx, db, "sato", "operator:test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := IssueEnrolment(ctx, db, "nobody", "operator:test", time.Now()); err == nil {
			t.Error("an enrolment code for an analyst who does not exist")
		}
		// A guessed code.
		if status, m, _ := pc.post(t, "/console/enrol/begin", pc.url, map[string]string{"code": "AAAA-BBBB-CCCC-DDDD"}); status != 401 || m["error"] != "bad_enrolment_code" {
			t.Errorf("guessed code: %d %v", status, m)
		}
		// A cross-site page starting the enrolment with the real code.
		if status, m, _ := pc.post(t, "/console/enrol/begin", "https://evil.example", map[string]string{"code": code}); status != 403 {
			t.Errorf("cross-site enrolment: %d %v", status, m)
		}
		// The code as typed: lower case, spaces.
		key, ck := pc.enrolPasskey(t, strings.ToLower(strings.ReplaceAll(code, "-", " ")))
		if status, body := pc.get(t, "/console/mail", ck); status != 200 || !strings.Contains(body, "sato") {
			t.Errorf("signed in by enrolment: %d", status)
		}
		// The code works once.
		if status, m, _ := pc.post(t, "/console/enrol/begin", pc.url, map[string]string{"code": code}); status != 401 {
			t.Errorf("reused code: %d %v", status, m)
		}
		// Sign-in with the passkey.
		status, m, ck2 := pc.signInWith(t, key, pc.url, false)
		if status != 200 || m["redirect"] != "/console/mail" || ck2 == "" {
			t.Fatalf("passkey sign-in: %d %v", status, m)
		}
		// A phishing page relaying the ceremony: the assertion names its
		// origin, which is not the console's.
		if status, m, _ := pc.signInWith(t, key, "http://localhost.evil.example", true); status != 403 && status != 401 {
			t.Errorf("sign-in from a phishing origin: %d %v", status, m)
		}
		// A replayed assertion: the ceremony is used up.
		status, begin, _ := pc.post(t, "/console/passkey/begin", pc.url, map[string]string{})
		cred, _ := key.Get(requestOptions(t, begin), pc.url)
		if status, m, _ := pc.post(t, "/console/passkey/finish", pc.url, map[string]any{"ceremony": begin["ceremony"], "credential": json.RawMessage(cred)}); status != 200 {
			t.Fatalf("sign-in: %d %v", status, m)
		}
		if status, m, _ := pc.post(t, "/console/passkey/finish", pc.url, map[string]any{"ceremony": begin["ceremony"], "credential": json.RawMessage(cred)}); status != 400 {
			t.Errorf("replayed assertion: %d %v", status, m)
		}
		// The audit trail names the person.
		entries, err := audit.New(db).List(ctx, "analyst:sato", 20)
		if err != nil {
			t.Fatal(err)
		}
		var logins, enrolled int
		for _, e := range entries {
			if e.Action == "console_login" && e.Actor == "analyst:sato" {
				logins++
			}
			if e.Action == "analyst_passkey_enrolled" && e.Actor == "analyst:sato" {
				enrolled++
			}
		}
		if logins < 2 || enrolled != 1 {
			t.Errorf("audit trail: %d sign-ins, %d enrolments by analyst:sato: %+v", logins, enrolled, entries)
		}
		// A disabled analyst: the open session ends, the passkey signs in no more.
		if err := pc.people.Disable(ctx, "sato", "operator:test"); err != nil {
			t.Fatal(err)
		}
		if status, _ := pc.get(t, "/console/mail", ck2); status != 401 {
			t.Errorf("session of a disabled analyst: %d", status)
		}
		if status, m, _ := pc.signInWith(t, key, pc.url, false); status != 403 {
			t.Errorf("sign-in of a disabled analyst: %d %v", status, m)
		}
	})
}

// TestEnrolmentCodeExpires: a code past its time is refused.
func TestEnrolmentCodeExpires(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	pc := newPasskeyConsole(t, db)
	if _, err := pc.people.Create(ctx, "kato", analyst.RoleSupervisor, "operator:test"); err != nil {
		t.Fatal(err)
	}
	code, err := IssueEnrolment(ctx, db, "kato", "operator:test", time.Now().Add(-EnrolmentTTL-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if status, m, _ := pc.post(t, "/console/enrol/begin", pc.url, map[string]string{"code": code}); status != 401 {
		t.Errorf("expired code: %d %v", status, m)
	}
}

// TestCeremoniesBounded: a flood of unauthenticated sign-in starts keeps
// at most maxCeremonies in memory; the next is answered 503.
func TestCeremoniesBounded(t *testing.T) {
	db := storetest.SQLite(t)
	pc := newPasskeyConsole(t, db)
	c := New(Config{DB: db, Passkeys: func() (string, []string) { return "localhost", []string{pc.url} }, Log: discard()})
	for i := 0; i < maxCeremonies; i++ {
		if c.saveCeremony(&ceremony{kind: "signin"}) == "" {
			t.Fatalf("ceremony %d refused", i)
		}
	}
	if id := c.saveCeremony(&ceremony{kind: "signin"}); id != "" {
		t.Errorf("ceremony beyond the bound kept")
	}
	if len(c.ceremonies) != maxCeremonies {
		t.Errorf("%d ceremonies kept", len(c.ceremonies))
	}
}
