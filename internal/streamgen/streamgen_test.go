package streamgen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
)

// small is a stream small enough for unit tests.
func small(seed uint64, fams []Family) Config {
	return Config{Seed: seed, Customers: 300, Days: 3, Families: fams}
}

func generate(t *testing.T, cfg Config) (stream, labels []byte) {
	t.Helper()
	var s, l bytes.Buffer
	if _, err := Generate(context.Background(), cfg, Outputs{Stream: &s, Labels: &l}, nil); err != nil {
		t.Fatal(err)
	}
	return s.Bytes(), l.Bytes()
}

// TestDeterministic: the same seed gives byte-identical streams and
// labels; another seed another stream; the families generated do not
// change the ordinary customers' history.
func TestDeterministic(t *testing.T) {
	sum := func(b []byte) [32]byte { return sha256.Sum256(b) }
	s1, l1 := generate(t, small(7, nil))
	s2, l2 := generate(t, small(7, nil))
	if sum(s1) != sum(s2) || sum(l1) != sum(l2) {
		t.Fatal("the same seed gave different output")
	}
	s3, _ := generate(t, small(8, nil))
	if sum(s1) == sum(s3) {
		t.Fatal("seeds 7 and 8 gave the same stream")
	}
	// The history (every day before the attack day) is the same with or
	// without attacks, apart from the eve of clean_history's first sells.
	var h1, h2 bytes.Buffer
	for _, tt := range []struct {
		fams []Family
		h    *bytes.Buffer
	}{{[]Family{FastPump}, &h1}, {[]Family{}, &h2}} {
		var s bytes.Buffer
		if _, err := Generate(context.Background(), small(7, tt.fams), Outputs{Stream: &s, History: tt.h}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(h1.Bytes(), h2.Bytes()) {
		t.Error("the history changed with the families generated")
	}
}

// TestStreamIsValidAndUnlabelled: every record passes the strict reader
// (fields, ranges, time order), and nothing in the stream says which
// records are fraudulent.
func TestStreamIsValidAndUnlabelled(t *testing.T) {
	s, _ := generate(t, small(3, nil))
	rd := event.NewReader(bytes.NewReader(s))
	n := 0
	types := map[event.Type]int{}
	for {
		r, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		types[r.Type]++
		n++
	}
	for _, ty := range []event.Type{event.TypeInstrument, event.TypeAccount, event.TypeBar, event.TypeFill, event.TypeLogin, event.TypeOrder,
		event.TypeWithdrawal, event.TypeContactChange, event.TypeFactorAdd, event.TypeBankChange} {
		if types[ty] == 0 {
			t.Errorf("no %s record in %d records", ty, n)
		}
	}
	for _, leak := range []string{"family", "lookalike", "fraud", "attack", "victim", "phish", "pump", "mfa_passable"} {
		if bytes.Contains(s, []byte(leak)) {
			t.Errorf("the stream contains %q", leak)
		}
	}
}

// TestLabelsMatchTheStream: each labelled record is in the stream with
// the type, account and session the label gives; every family generated
// has fraudulent sells or money movements; targets are instruments and
// victims accounts of the stream; look-alikes are labelled; with no
// family, no record is fraudulent.
func TestLabelsMatchTheStream(t *testing.T) {
	for _, tt := range []struct {
		name string
		fams []Family
	}{
		{"all", nil},
		{"fast_pump", []Family{FastPump}},
		{"phish_relay,bank_takeover", []Family{PhishRelay, BankTakeover}},
		{"none", []Family{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, l := generate(t, small(11, tt.fams))
			truth, err := ReadLabels(bytes.NewReader(l))
			if err != nil {
				t.Fatal(err)
			}
			want := tt.fams
			if want == nil {
				want = Families
			}
			recs := map[string]*event.Record{}
			insts, accts := map[string]bool{}, map[string]bool{}
			rd := event.NewReader(bytes.NewReader(s))
			for {
				r, err := rd.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				recs[r.ID] = r
				switch r.Type {
				case event.TypeInstrument:
					insts[r.Symbol] = true
				case event.TypeAccount:
					accts[r.Account] = true
				}
			}
			money := map[Family]int64{}
			looks := 0
			for id, lb := range truth.Records {
				r := recs[id]
				if r == nil {
					t.Fatalf("labelled record %s is not in the stream", id)
				}
				if string(r.Type) != lb.Type || r.Account != lb.Account || r.Session != lb.Session {
					t.Errorf("label %+v does not match record %+v", lb, r)
				}
				if !r.Type.Action() {
					t.Errorf("label on %s, which is not a customer action", r.Type)
				}
				if lb.Lookalike != "" {
					looks++
					continue
				}
				if _, ok := truth.Accounts[r.Account]; !ok {
					t.Errorf("fraudulent record %s acts in %s, not a labelled victim", id, r.Account)
				}
				if r.Side == event.SideSell || r.Type == event.TypeWithdrawal {
					money[lb.Family] += r.ValueJPY + r.AmountJPY
				}
			}
			for _, f := range want {
				if money[f] == 0 {
					t.Errorf("family %s: no fraudulent sell or withdrawal", f)
				}
			}
			if len(want) == 0 && len(truth.Records) != looks {
				t.Errorf("no family asked, yet %d fraudulent records", len(truth.Records)-looks)
			}
			if looks == 0 {
				t.Error("no look-alike labelled")
			}
			for sym := range truth.Targets {
				if !insts[sym] {
					t.Errorf("target %s is no instrument of the stream", sym)
				}
			}
			for a := range truth.Accounts {
				if !accts[a] {
					t.Errorf("victim %s has no account record", a)
				}
			}
			if got := len(truth.Meta.Families); got != len(want) {
				t.Errorf("meta names %d families, want %d", got, len(want))
			}
		})
	}
}

// TestFamilySignatures: each family does what the issue describes, on the
// records themselves.
func TestFamilySignatures(t *testing.T) {
	s, l := generate(t, Config{Seed: 5, Customers: 600, Days: 3})
	truth, err := ReadLabels(bytes.NewReader(l))
	if err != nil {
		t.Fatal(err)
	}
	rd := event.NewReader(bytes.NewReader(s))
	type seen struct{ hosting, foreignCountry, residentialJP, lunch, closing, limitAsk, sameDevice, bank, factor, foreignBuy int }
	by := map[Family]*seen{}
	for _, f := range Families {
		by[f] = &seen{}
	}
	hostingASN := map[int64]bool{16509: true, 14061: true, 16276: true, 20473: true, 45102: true, 132203: true, 4134: true, 24940: true, 9009: true, 7506: true}
	for {
		r, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lb, ok := truth.Records[r.ID]
		if !ok || lb.Family == "" {
			continue
		}
		x := by[lb.Family]
		if hostingASN[r.ASN] {
			x.hosting++
		}
		if r.Country != "JP" {
			x.foreignCountry++
		}
		if r.Country == "JP" && !hostingASN[r.ASN] {
			x.residentialJP++
		}
		d := sinceMidnight(r.Time)
		if r.Type == event.TypeOrder && d >= 11*time.Hour+30*time.Minute && d < 12*time.Hour+30*time.Minute {
			x.lunch++
		}
		if r.Type == event.TypeOrder && d >= 15*time.Hour+20*time.Minute && d < 15*time.Hour+30*time.Minute {
			x.closing++
		}
		if r.PriceType == event.PriceLimit {
			x.limitAsk++
		}
		switch r.Type {
		case event.TypeBankChange:
			x.bank++
		case event.TypeFactorAdd:
			x.factor++
		case event.TypeOrder:
			if r.Side == event.SideBuy && strings.Contains(r.Symbol, ".") {
				x.foreignBuy++
			}
		}
	}
	for _, tt := range []struct {
		fam  Family
		what string
		n    func(s *seen) int
	}{
		{PhishRelay, "acts from Japanese residential networks", func(s *seen) int { return s.residentialJP }},
		{FastPump, "acts from hosting networks", func(s *seen) int { return s.hosting }},
		{BankTakeover, "changes the bank account", func(s *seen) int { return s.bank }},
		{BankTakeover, "adds a factor", func(s *seen) int { return s.factor }},
		{ForeignPump, "buys foreign issues", func(s *seen) int { return s.foreignBuy }},
		{CleanHistory, "orders in the lunch break", func(s *seen) int { return s.lunch }},
		{CleanHistory, "orders in the closing auction", func(s *seen) int { return s.closing }},
		{CleanHistory, "places limit orders", func(s *seen) int { return s.limitAsk }},
		{SlowTarget, "places limit orders", func(s *seen) int { return s.limitAsk }},
	} {
		if tt.n(by[tt.fam]) == 0 {
			t.Errorf("%s never %s", tt.fam, tt.what)
		}
	}
	if by[PhishRelay].foreignCountry+by[PhishRelay].hosting > 0 {
		t.Errorf("phish_relay acted from abroad or hosting: %+v", by[PhishRelay])
	}
}

// TestCookieReplayUsesTheVictimsSession: the infostealer acts inside the
// victim's own session with the victim's device and user agent, from
// another network.
func TestCookieReplayUsesTheVictimsSession(t *testing.T) {
	s, l := generate(t, small(9, []Family{CookieReplay}))
	truth, _ := ReadLabels(bytes.NewReader(l))
	logins := map[string]*event.Record{}
	rd := event.NewReader(bytes.NewReader(s))
	n := 0
	for {
		r, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lb, fraud := truth.Records[r.ID]
		if r.Type == event.TypeLogin && r.OK && !fraud {
			logins[r.Session] = r
		}
		if fraud && lb.Family == CookieReplay {
			n++
			li := logins[r.Session]
			if li == nil || li.Account != r.Account {
				t.Fatalf("replayed record %s is not in a session the victim signed in to", r.ID)
			}
			if li.Device != r.Device || li.UA != r.UA || li.IP == r.IP {
				t.Errorf("record %s: device %s/%s ip %s, victim's login %s/%s ip %s", r.ID, r.Device, r.UA, r.IP, li.Device, li.UA, li.IP)
			}
		}
	}
	if n == 0 {
		t.Fatal("no cookie_replay record")
	}
}

func TestParseFamilies(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		err  string
	}{
		{"all", 7, ""},
		{"none", 0, ""},
		{"", 0, ""},
		{"fast_pump", 1, ""},
		{"fast_pump, phish_relay", 2, ""},
		{"fast_pump,bogus", 0, `unknown family "bogus"`},
	} {
		got, err := ParseFamilies(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || len(got) != tt.want {
			t.Errorf("%q: %v, %v; want %d families", tt.in, got, err, tt.want)
		}
	}
}

// TestTradingDays: the history is weekdays that are not holidays, the
// attack day last.
func TestTradingDays(t *testing.T) {
	d := func(s string) time.Time {
		x, _ := time.ParseInLocation(time.DateOnly, s, clock.JST)
		return x
	}
	for _, tt := range []struct {
		attack      string
		n           int
		first, prev string
	}{
		{"2025-04-22", 20, "2025-03-25", "2025-04-21"},
		{"2025-05-07", 3, "2025-04-30", "2025-05-02"}, // Golden Week
		{"2025-01-06", 2, "2024-12-27", "2024-12-30"}, // year-end closure
		{"2025-01-14", 1, "2025-01-10", "2025-01-10"}, // Coming of Age Day
		{"2025-03-21", 2, "2025-03-18", "2025-03-19"}, // Vernal Equinox
	} {
		days := tradingDays(d(tt.attack), tt.n)
		if len(days) != tt.n+1 || !days[0].Equal(d(tt.first)) || !days[tt.n-1].Equal(d(tt.prev)) || !days[tt.n].Equal(d(tt.attack)) {
			var got []string
			for _, x := range days {
				got = append(got, x.Format(time.DateOnly))
			}
			t.Errorf("%s, %d days: %v; want %s … %s", tt.attack, tt.n, got, tt.first, tt.prev)
		}
	}
}

func TestGenerateRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Customers: 5, Days: 3}, {Customers: 100, Days: 0}, {Customers: 100, Days: 1000}} {
		if _, err := Generate(context.Background(), cfg, Outputs{Stream: io.Discard}, nil); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}
