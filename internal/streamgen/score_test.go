package streamgen

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// A hand-made stream: two victims (phish_relay with a relayed code,
// fast_pump with a stolen password), one legitimate customer, one
// legitimate customer who looks like an attack.
const scoreStream = `{"id":"1","type":"login","time":"2025-04-22T10:00:00+09:00","account":"V1","session":"s1","ip":"1.1.1.1","asn":2516,"country":"JP","device":"dx","ua":"u","channel":"web","method":"password","factors":["password","sms_otp"],"ok":true}
{"id":"2","type":"order","time":"2025-04-22T10:01:00+09:00","account":"V1","session":"s1","ip":"1.1.1.1","asn":2516,"country":"JP","device":"dx","ua":"u","channel":"web","order_id":"o2","symbol":"7203","side":"sell","qty":100,"price_type":"market","account_kind":"cash","value_jpy":1000000}
{"id":"3","type":"order","time":"2025-04-22T10:02:00+09:00","account":"V1","session":"s1","ip":"1.1.1.1","asn":2516,"country":"JP","device":"dx","ua":"u","channel":"web","order_id":"o3","symbol":"6758","side":"sell","qty":100,"price_type":"market","account_kind":"cash","value_jpy":300000}
{"id":"4","type":"order","time":"2025-04-22T10:05:00+09:00","account":"V1","session":"s1","ip":"1.1.1.1","asn":2516,"country":"JP","device":"dx","ua":"u","channel":"web","order_id":"o4","symbol":"1111","side":"buy","qty":1000,"price_type":"market","account_kind":"cash","value_jpy":500000}
{"id":"5","type":"login","time":"2025-04-22T10:10:00+09:00","account":"V2","session":"s2","ip":"9.9.9.9","asn":16509,"country":"US","device":"dy","ua":"u","channel":"web","method":"password","factors":["password"],"ok":true}
{"id":"6","type":"order","time":"2025-04-22T10:11:00+09:00","account":"V2","session":"s2","ip":"9.9.9.9","asn":16509,"country":"US","device":"dy","ua":"u","channel":"web","order_id":"o6","symbol":"7203","side":"sell","qty":100,"price_type":"market","account_kind":"cash","value_jpy":2000000}
{"id":"7","type":"order","time":"2025-04-22T10:20:00+09:00","account":"V2","session":"s2","ip":"9.9.9.9","asn":16509,"country":"US","device":"dy","ua":"u","channel":"web","order_id":"o7","symbol":"1111","side":"buy","qty":1000,"price_type":"market","account_kind":"cash","value_jpy":1500000}
{"id":"8","type":"login","time":"2025-04-22T10:30:00+09:00","account":"L1","session":"s3","ip":"2.2.2.2","asn":4713,"country":"JP","device":"dz","ua":"u","channel":"app","method":"passkey","factors":["passkey"],"ok":true}
{"id":"9","type":"order","time":"2025-04-22T10:31:00+09:00","account":"L1","session":"s3","ip":"2.2.2.2","asn":4713,"country":"JP","device":"dz","ua":"u","channel":"app","order_id":"o9","symbol":"1111","side":"buy","qty":100,"price_type":"market","account_kind":"cash","value_jpy":50000}
{"id":"10","type":"login","time":"2025-04-22T10:40:00+09:00","account":"L2","session":"s4","ip":"3.3.3.3","asn":7922,"country":"US","device":"dw","ua":"u","channel":"web","method":"password","factors":["password","totp"],"ok":true}
{"id":"11","type":"withdrawal","time":"2025-04-22T10:41:00+09:00","account":"L2","session":"s4","ip":"3.3.3.3","asn":7922,"country":"US","device":"dw","ua":"u","channel":"web","amount_jpy":100000,"bank_hash":"b"}
{"id":"12","type":"login","time":"2025-04-22T10:42:00+09:00","account":"L2","session":"","ip":"3.3.3.3","asn":7922,"country":"US","device":"dw","ua":"u","channel":"web","method":"password","factors":[],"ok":false}
`

const scoreLabels = `{"kind":"meta","seed":1,"customers":4,"days":1}
{"kind":"target","family":"fast_pump","symbol":"1111"}
{"kind":"account","family":"phish_relay","account":"V1","credential":"relay"}
{"kind":"account","family":"fast_pump","account":"V2","credential":"stolen"}
{"kind":"record","family":"phish_relay","id":"1","type":"login","account":"V1","session":"s1","credential":"relay","mfa_passable":true}
{"kind":"record","family":"phish_relay","id":"2","type":"order","account":"V1","session":"s1","side":"sell","value_jpy":1000000,"credential":"relay","mfa_passable":true}
{"kind":"record","family":"phish_relay","id":"3","type":"order","account":"V1","session":"s1","side":"sell","value_jpy":300000,"credential":"relay","mfa_passable":true}
{"kind":"record","family":"phish_relay","id":"4","type":"order","account":"V1","session":"s1","side":"buy","value_jpy":500000,"credential":"relay","mfa_passable":true}
{"kind":"record","family":"fast_pump","id":"5","type":"login","account":"V2","session":"s2","credential":"stolen"}
{"kind":"record","family":"fast_pump","id":"6","type":"order","account":"V2","session":"s2","side":"sell","value_jpy":2000000,"credential":"stolen"}
{"kind":"record","family":"fast_pump","id":"7","type":"order","account":"V2","session":"s2","side":"buy","value_jpy":1500000,"credential":"stolen"}
{"kind":"record","lookalike":"traveller","id":"10","type":"login","account":"L2","session":"s4"}
{"kind":"record","lookalike":"traveller","id":"11","type":"withdrawal","account":"L2","session":"s4"}
{"kind":"record","lookalike":"traveller","id":"12","type":"login","account":"L2"}
`

func decisionsOf(actions map[string]string) string {
	var b strings.Builder
	for _, id := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"} {
		a, ok := actions[id]
		if !ok {
			a = "allow"
		}
		if a == "-" {
			continue
		}
		factor := ""
		if f, ok := strings.CutPrefix(a, "challenge:"); ok {
			a, factor = "challenge", `,"factor":"`+f+`"`
		}
		b.WriteString(`{"event":"` + id + `","time":"2025-04-22T10:00:00+09:00","account":"x","action":"` + a + `"` + factor + `,"score":0,"reasons":[],"policy":"p"}` + "\n")
	}
	return b.String()
}

// TestScoreArithmetic: the table of hand-made cases, computed by hand.
func TestScoreArithmetic(t *testing.T) {
	type want struct {
		relaySell, pumpSell, pooledSell, pooledBuy float64
		firstPassed                                int
		legitChallenged, legitSessions             int
		legitHeld, legitActions                    int
		halts, frozen                              []string
		missing                                    int
	}
	for _, tt := range []struct {
		name   string
		dec    map[string]string
		alerts string
		want   want
	}{
		{"everything allowed", nil, "",
			want{0, 0, 0, 0, 2, 0, 2, 0, 4, nil, nil, 0}},
		// An mfa challenge does not stop a kit that relays codes; it stops a stolen password.
		{"mfa step-up", map[string]string{"2": "challenge:mfa", "6": "challenge:mfa"}, "",
			want{0, 1, 2.0 / 3.3, 0, 1, 0, 2, 0, 4, nil, nil, 0}},
		{"phishing-resistant step-up", map[string]string{"2": "challenge:phishing_resistant"}, "",
			want{1 / 1.3, 0, 1 / 3.3, 0, 1, 0, 2, 0, 4, nil, nil, 0}},
		// A sign-in refused stops every order of its session.
		{"sign-in denied", map[string]string{"5": "deny"}, "",
			want{0, 1, 2 / 3.3, 1.5 / 2.0, 1, 0, 2, 0, 4, nil, nil, 0}},
		{"sign-in passed a relayed code", map[string]string{"1": "challenge:mfa"}, "",
			want{0, 0, 0, 0, 2, 0, 2, 0, 4, nil, nil, 0}},
		// A halt stops later buys, not one at the same instant; a freeze
		// every later action. A failed sign-in is no friction.
		{"halt and freeze", nil,
			`{"alert":"a1","time":"2025-04-22T10:05:00+09:00","kind":"cross_account_pump","symbol":"1111","accounts":["V1"],"score":90,"action":"halt_buys"}
{"alert":"a2","time":"2025-04-22T10:10:30+09:00","kind":"hijacked_accounts","accounts":["V2","L2"],"score":95,"action":"freeze_accounts"}
`,
			want{0, 1, 2 / 3.3, 1.5 / 2.0, 1, 0, 2, 2, 4, nil, []string{"L2"}, 0}},
		{"legitimate friction", map[string]string{"9": "hold", "11": "challenge:phishing_resistant", "12": "deny"},
			`{"alert":"a3","time":"2025-04-22T09:00:00+09:00","kind":"firm_participation","symbol":"2222","accounts":[],"score":85,"action":"halt_buys"}
`,
			want{0, 0, 0, 0, 2, 1, 2, 1, 4, []string{"2222"}, nil, 0}},
		{"missing decisions", map[string]string{"2": "-", "9": "-"}, "",
			want{0, 0, 0, 0, 2, 0, 2, 0, 4, nil, nil, 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			truth, err := ReadLabels(strings.NewReader(scoreLabels))
			if err != nil {
				t.Fatal(err)
			}
			var al *strings.Reader
			if tt.alerts != "" {
				al = strings.NewReader(tt.alerts)
			}
			var tab *Table
			if al != nil {
				tab, err = Score(strings.NewReader(scoreStream), truth, strings.NewReader(decisionsOf(tt.dec)), al)
			} else {
				tab, err = Score(strings.NewReader(scoreStream), truth, strings.NewReader(decisionsOf(tt.dec)), nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			fam := map[Family]FamilyScore{}
			for _, f := range tab.Families {
				fam[f.Family] = f
			}
			near := func(what string, got, want float64) {
				if math.Abs(got-want) > 1e-9 {
					t.Errorf("%s = %.4f, want %.4f", what, got, want)
				}
			}
			w := tt.want
			near("phish_relay sell", fam[PhishRelay].SellRate, w.relaySell)
			near("fast_pump sell", fam[FastPump].SellRate, w.pumpSell)
			near("pooled sell", tab.Pooled.SellRate, w.pooledSell)
			near("pooled buy", tab.Pooled.BuyRate, w.pooledBuy)
			if tab.Pooled.FirstSellsPassed != w.firstPassed {
				t.Errorf("first sells passed %d, want %d", tab.Pooled.FirstSellsPassed, w.firstPassed)
			}
			if tab.LegitChallenged != w.legitChallenged || tab.LegitSessions != w.legitSessions {
				t.Errorf("legit sessions challenged %d of %d, want %d of %d", tab.LegitChallenged, tab.LegitSessions, w.legitChallenged, w.legitSessions)
			}
			if tab.LegitHeldDenied != w.legitHeld || tab.LegitActions != w.legitActions {
				t.Errorf("legit actions held %d of %d, want %d of %d", tab.LegitHeldDenied, tab.LegitActions, w.legitHeld, w.legitActions)
			}
			names := func(hs []Harm) []string {
				var out []string
				for _, h := range hs {
					out = append(out, h.Name)
				}
				return out
			}
			if g := strings.Join(names(tab.NonTargetHalts), ","); g != strings.Join(w.halts, ",") {
				t.Errorf("non-target halts %q, want %q", g, w.halts)
			}
			if g := strings.Join(names(tab.LegitFrozenAccounts), ","); g != strings.Join(w.frozen, ",") {
				t.Errorf("legit frozen %q, want %q", g, w.frozen)
			}
			if tab.Missing != w.missing {
				t.Errorf("missing %d, want %d", tab.Missing, w.missing)
			}
		})
	}
}

// TestScoreRejectsBadInput: a bad line of decisions or alerts is an error
// naming its line and field.
func TestScoreRejectsBadInput(t *testing.T) {
	truth, err := ReadLabels(strings.NewReader(scoreLabels))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, dec, alerts, want string
	}{
		{"unknown action", decisionsOf(nil) + `{"event":"13","time":"2025-04-22T10:00:00+09:00","action":"maybe"}` + "\n", "", "decisions: line 13: field action"},
		{"no event", `{"time":"2025-04-22T10:00:00+09:00","action":"allow"}` + "\n", "", "decisions: line 1: field event"},
		{"score as text", `{"event":"1","action":"allow","score":"high"}` + "\n", "", "decisions: line 1: field score"},
		{"bad alert time", decisionsOf(nil), `{"alert":"a","time":"yesterday","kind":"k","accounts":[],"action":"none"}` + "\n", "alerts: line 1: field time"},
		{"blank alert line", decisionsOf(nil), "\n", "alerts: line 1: blank line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var al *strings.Reader
			if tt.alerts != "" {
				al = strings.NewReader(tt.alerts)
			}
			var err error
			if al != nil {
				_, err = Score(strings.NewReader(scoreStream), truth, strings.NewReader(tt.dec), al)
			} else {
				_, err = Score(strings.NewReader(scoreStream), truth, strings.NewReader(tt.dec), nil)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestReadLabelsErrors(t *testing.T) {
	meta := `{"kind":"meta"}` + "\n"
	for _, tt := range []struct {
		in, want string
	}{
		{"", "line 1: empty labels file"},
		{meta + `{"kind":"record","family":"fast_pump"}`, "line 2: field id: missing"},
		{meta + `{"kind":"record","id":"x"}`, "line 2: field family: a record is either fraudulent"},
		{meta + `{"kind":"record","id":"x","family":"bogus"}`, `line 2: field family: unknown family "bogus"`},
		{meta + `{"kind":"target","family":"fast_pump"}`, "line 2: field symbol: missing"},
		{meta + `{"kind":"account","account":"a"}`, "line 2: field family: missing"},
		{meta + `{"kind":"record","id":"x","family":"fast_pump","value_jpy":"lots"}`, "line 2: field value_jpy: want int64"},
		{meta + `{"kind":"record","id":"x","family":"fast_pump","colour":"red"}`, "line 2: not a JSON object of a label"},
		{meta + `{"kind":"record","id":"x","family":"fast_pump","credential":"magic"}`, `line 2: field credential: unknown credential "magic"`},
		{meta + `{"kind":"weather"}`, `line 2: field kind: unknown kind "weather"`},
		{meta + meta, "line 2: field kind: meta must be the first line"},
		{meta + "\n", "line 2: blank line"},
		{meta + `{"kind":"record","id":"x","family":"fast_pump"}` + "\n" + `{"kind":"record","id":"x","lookalike":"traveller"}`, `line 3: field id: record "x" labelled twice`},
		{meta + `{"kind":"target","family":"fast_pump","symbol":"1"} {"kind":"meta"}`, "line 2: more than one JSON value"},
	} {
		_, err := ReadLabels(strings.NewReader(tt.in))
		var le *LabelError
		if !errors.As(err, &le) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.in, err, tt.want)
		}
	}
}

// FuzzReadLabels: no input makes the labels reader panic, and every
// error names a line.
func FuzzReadLabels(f *testing.F) {
	f.Add(scoreLabels)
	f.Add(`{"kind":"meta"}` + "\n" + `{"kind":"record","id":"x","family":"fast_pump","value_jpy":1e99}`)
	f.Add("\xff\xfe{")
	f.Fuzz(func(t *testing.T, in string) {
		tr, err := ReadLabels(strings.NewReader(in))
		if err != nil {
			var le *LabelError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("error %v names no line", err)
			}
			return
		}
		for id, l := range tr.Records {
			if id == "" || (l.Family == "") == (l.Lookalike == "") {
				t.Fatalf("accepted a bad record label %+v", l)
			}
		}
	})
}

// FuzzScoreInputs: no decisions or alerts file makes the scorer panic,
// and every error names a line.
func FuzzScoreInputs(f *testing.F) {
	f.Add(decisionsOf(map[string]string{"2": "challenge:mfa", "5": "deny"}), `{"alert":"a","time":"2025-04-22T10:05:00+09:00","kind":"k","symbol":"1111","accounts":["V1"],"score":90,"action":"halt_buys"}`)
	f.Add(`{"event":"1","action":"challenge"}`, `{"alert":"a","time":"2025-04-22T10:05:00+09:00","accounts":null,"action":"freeze_accounts"}`)
	f.Add("{", "\n")
	f.Fuzz(func(t *testing.T, dec, alerts string) {
		truth, err := ReadLabels(strings.NewReader(scoreLabels))
		if err != nil {
			t.Fatal(err)
		}
		tab, err := Score(strings.NewReader(scoreStream), truth, strings.NewReader(dec), strings.NewReader(alerts))
		if err != nil {
			var le *LabelError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("error %v names no line", err)
			}
			return
		}
		for _, r := range []float64{tab.Pooled.SellRate, tab.Pooled.BuyRate, tab.LegitChallengedRate, tab.LegitHeldDeniedRate} {
			if r < 0 || r > 1 || math.IsNaN(r) {
				t.Fatalf("rate %v out of range", r)
			}
		}
	})
}
