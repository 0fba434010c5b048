package event

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// decodeIntoJSON is decodeInto as it was before the fast path: every record
// through json.Unmarshal. The fast path must never change what it gives.
func decodeIntoJSON(data []byte, r *Record) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return &Error{Msg: "want a JSON object"}
	}
	if err := json.Unmarshal(data, r); err != nil {
		return jsonError(err)
	}
	return r.Validate()
}

// Realistic customer actions, as the guard receives them.
const (
	benchOrder = `{"id":"E-20250326-000123456","type":"order","time":"2025-03-26T09:13:00.123+09:00","account":"C00012345","session":"S-C00012345-d0","ip":"203.0.113.9","asn":2516,"country":"JP","device":"d-3f2a9c1b7e5d4a60","ua":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0","channel":"web","order_id":"O-000987654","symbol":"7203","side":"buy","qty":300,"price_type":"limit","limit_price":2400.5,"account_kind":"cash","value_jpy":720150}`
	benchLogin = `{"id":"E-20250326-000123455","type":"login","time":"2025-03-26T09:12:03.12+09:00","account":"C00012345","session":"","ip":"203.0.113.9","asn":2516,"country":"JP","device":"d-3f2a9c1b7e5d4a60","ua":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0","channel":"web","method":"password","factors":["password","email_otp"],"ok":true}`
)

const t0 = `"id":"x","time":"2025-03-26T09:00:00+09:00"`

// fastCases are records, well formed or not, with whether the fast path
// should take them (rather than leave them to encoding/json).
var fastCases = []struct {
	name string
	in   string
	fast bool
}{
	{"order", benchOrder, true},
	{"login", benchLogin, true},
	{"case-insensitive keys", `{"ID":"x","Type":"login","TIME":"2025-03-26T09:00:00Z","Account":"A","ASN":5,"OK":true,"Factors":["password"],"Method":"password","Foreign_Enabled":true}`, true},
	{"case-insensitive holding keys", `{"type":"account",` + t0 + `,"account":"A","holdings":[{"SYMBOL":"7203","Qty":1,"cost_JPY":2,"Kind":"cash"}]}`, true},
	{"duplicate keys", `{"type":"order",` + t0 + `,"qty":1,"qty":2,"side":"sell","side":"buy","id":"y","time":"2025-03-26T10:00:00+09:00"}`, true},
	{"duplicate keys differing in case", `{"type":"bar",` + t0 + `,"open":1,"OPEN":2,"Open":3}`, true},
	{"duplicate factors", `{"type":"login",` + t0 + `,"factors":["password","totp"],"factors":["passkey"]}`, true},
	{"duplicate factors emptied", `{"type":"login",` + t0 + `,"factors":["password"],"factors":[]}`, true},
	{"duplicate holdings", `{"type":"account",` + t0 + `,"account":"A","holdings":[{"symbol":"a","qty":1}],"holdings":[{"kind":"cash"}]}`, false},
	{"empty arrays", `{"type":"account",` + t0 + `,"account":"A","holdings":[],"factors":[ ]}`, true},
	{"empty holding", `{"type":"account",` + t0 + `,"account":"A","holdings":[{},{ }]}`, true},
	{"unknown fields", `{"type":"bar",` + t0 + `,"extra":{"ignored":true,"a":[1,-2.5e-3,{"b":null,"c":[]}],"s":"\u00e9\n\"\\\/\b\f\r\t","":{}},"z":null,"n":-0.0E+1}`, true},
	{"unknown fields in holdings", `{"type":"account",` + t0 + `,"account":"A","holdings":[{"symbol":"7203","note":{"x":["y"]},"qty":1}]}`, true},
	{"long unknown key", `{"type":"bar",` + t0 + `,"a_key_much_longer_than_any_field":1,"foreign_enabled_x":true}`, true},
	{"escape in string", `{"type":"login",` + t0 + `,"ua":"Mozilla \"x\""}`, false},
	{"unicode escape in string", `{"type":"login",` + t0 + `,"ua":"\u65e5\ud83d\ude00"}`, false},
	{"escape in key", `{"type":"login",` + t0 + `,"\u0061sn":5}`, false},
	{"unicode in string", `{"type":"instrument",` + t0 + `,"name":"トヨタ自動車 ✓ 😀"}`, true},
	{"invalid utf-8 in string", `{"type":"instrument",` + t0 + `,"name":"a` + "\xff\xed\xa0\x80" + `b"}`, false},
	{"invalid utf-8 in unknown value", `{"type":"instrument",` + t0 + `,"note":"a` + "\xff" + `b"}`, true},
	{"unicode key folding to a field", `{"type":"login",` + t0 + `,"aſn":5,"` + "\u212a" + `":1}`, false},
	{"control character in string", `{"type":"login",` + t0 + `,"ua":"a` + "\t" + `b"}`, false},
	{"null field", `{"type":"login",` + t0 + `,"asn":null}`, false},
	{"null time", `{"type":"login",` + t0 + `,"time":null}`, false},
	{"null factors", `{"type":"login",` + t0 + `,"factors":null}`, false},
	{"null factor element", `{"type":"login",` + t0 + `,"factors":["password",null]}`, false},
	{"null holding", `{"type":"account",` + t0 + `,"account":"A","holdings":[null]}`, false},
	{"18-digit integer", `{"type":"withdrawal",` + t0 + `,"amount_jpy":123456789012345678}`, true},
	{"max int64", `{"type":"withdrawal",` + t0 + `,"amount_jpy":9223372036854775807}`, false},
	{"min int64", `{"type":"withdrawal",` + t0 + `,"amount_jpy":-9223372036854775808}`, false},
	{"int overflow", `{"type":"withdrawal",` + t0 + `,"amount_jpy":99999999999999999999}`, false},
	{"negative zero int", `{"type":"withdrawal",` + t0 + `,"amount_jpy":-0}`, true},
	{"negative int", `{"type":"login",` + t0 + `,"asn":-7}`, true},
	{"fraction in int", `{"type":"fill",` + t0 + `,"qty":1.0}`, false},
	{"exponent in int", `{"type":"fill",` + t0 + `,"qty":1e3}`, false},
	{"leading zero", `{"type":"fill",` + t0 + `,"qty":01}`, false},
	{"plus sign", `{"type":"fill",` + t0 + `,"qty":+1}`, false},
	{"floats", `{"type":"bar",` + t0 + `,"open":1E-3,"high":2400.5,"low":0.1,"close":-0,"price":123456789012345678901234567890,"price_jpy":1e308,"limit_price":5e-324}`, true},
	{"float out of range", `{"type":"bar",` + t0 + `,"open":1e400}`, false},
	{"bad float", `{"type":"bar",` + t0 + `,"open":1.}`, false},
	{"bad exponent", `{"type":"bar",` + t0 + `,"open":1e+}`, false},
	{"bools", `{"type":"account",` + t0 + `,"account":"A","foreign_enabled":true,"margin_enabled":false,"ok":true}`, true},
	{"string for int", `{"type":"fill",` + t0 + `,"qty":"100"}`, false},
	{"number for string", `{"type":"fill",` + t0 + `,"symbol":7203}`, false},
	{"string for bool", `{"type":"login",` + t0 + `,"ok":"true"}`, false},
	{"string for array", `{"type":"login",` + t0 + `,"factors":"password"}`, false},
	{"number in array", `{"type":"login",` + t0 + `,"factors":["password",1]}`, false},
	{"object for string", `{"type":"login",` + t0 + `,"ua":{}}`, false},
	{"array for number", `{"type":"login",` + t0 + `,"asn":[1]}`, false},
	{"number for time", `{"id":"x","type":"bar","time":1742947200}`, false},
	{"time without offset", `{"id":"x","type":"bar","time":"2025-03-26T09:00:00"}`, false},
	{"time with escape", `{"id":"x","type":"bar","time":"2025-03-26T09:00:00\u002b09:00"}`, false},
	{"time in UTC", `{"id":"x","type":"bar","time":"2025-03-26T00:00:00.000000001Z"}`, true},
	{"time with an odd offset", `{"id":"x","type":"bar","time":"2025-03-26T09:00:00-03:30"}`, true},
	{"time lower case", `{"id":"x","type":"bar","time":"2025-03-26t09:00:00z"}`, false},
	{"white space", " \t\r\n{ \"id\" :\n\"x\" ,\t\"type\"\r: \"login\" , \"time\" : \"2025-03-26T09:00:00+09:00\" ,\"factors\" : [ \"password\" , \"totp\" ] , \"holdings\" : [ { \"qty\" : 1 } ] , \"x\" : [ { } , [ ] ] } \n", true},
	{"trailing garbage", `{"type":"bar",` + t0 + `} x`, false},
	{"two objects", `{"type":"bar",` + t0 + `}{}`, false},
	{"trailing comma", `{"type":"bar",` + t0 + `,}`, false},
	{"trailing comma in array", `{"type":"login",` + t0 + `,"factors":["password",]}`, false},
	{"missing colon", `{"type" "bar"}`, false},
	{"unterminated", `{"type":"bar",` + t0, false},
	{"unterminated string", `{"type":"bar`, false},
	{"empty object", `{}`, true},
	{"not an object", `[1]`, false},
	{"unknown type", `{"id":"q","type":"quote","time":"2025-03-26T09:00:00+09:00"}`, true},
	{"invalid record", `{"id":"x","type":"order","time":"2025-03-26T09:00:00+09:00","account":"A","order_id":"o","symbol":"s","side":"short","qty":100,"price_type":"market","account_kind":"cash"}`, true},
	{"deep unknown value", `{"type":"bar",` + t0 + `,"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, false},
	{"bad escape in unknown value", `{"type":"bar",` + t0 + `,"x":"\x"}`, false},
	{"short unicode escape in unknown value", `{"type":"bar",` + t0 + `,"x":"\u12"}`, false},
	{"bad literal in unknown value", `{"type":"bar",` + t0 + `,"x":nul}`, false},
	{"literal run on", `{"type":"login",` + t0 + `,"ok":truex}`, false},
}

func init() {
	for _, line := range strings.Split(strings.TrimSpace(sample), "\n") {
		fastCases = append(fastCases, struct {
			name string
			in   string
			fast bool
		}{"sample " + line[7:9], line, true})
	}
}

// checkFastDecode checks data on the fast path against encoding/json, and
// decodeInto against decodeIntoJSON, and reports whether the fast path
// took data.
func checkFastDecode(t *testing.T, data []byte) bool {
	t.Helper()
	var fr Record
	fast := decodeFast(data, &fr)
	if fast {
		var jr Record
		if err := json.Unmarshal(data, &jr); err != nil {
			t.Fatalf("fast path took %q, which json.Unmarshal rejects: %v", data, err)
		}
		if !sameRecord(&fr, &jr) {
			t.Fatalf("fast path and json.Unmarshal differ on %q:\nfast %#v\njson %#v", data, fr, jr)
		}
	}
	var nr, or Record
	nerr := decodeInto(data, &nr)
	oerr := decodeIntoJSON(data, &or)
	if !reflect.DeepEqual(nerr, oerr) {
		t.Fatalf("decodeInto and the old path differ on %q:\n new %#v\n old %#v", data, nerr, oerr)
	}
	if !sameRecord(&nr, &or) {
		t.Fatalf("decodeInto and the old path decode %q differently:\n new %#v\n old %#v", data, nr, or)
	}
	return fast
}

// sameRecord reports whether a and b are deeply equal, telling -0 from 0.
func sameRecord(a, b *Record) bool {
	if !reflect.DeepEqual(a, b) {
		return false
	}
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := range va.NumField() {
		if f := va.Field(i); f.Kind() == reflect.Float64 && math.Float64bits(f.Float()) != math.Float64bits(vb.Field(i).Float()) {
			return false
		}
	}
	return a.Time.Location().String() == b.Time.Location().String()
}

func TestFastDecode(t *testing.T) {
	for _, tt := range fastCases {
		t.Run(tt.name, func(t *testing.T) {
			if fast := checkFastDecode(t, []byte(tt.in)); fast != tt.fast {
				t.Errorf("fast path took it: %v, want %v", fast, tt.fast)
			}
		})
	}
}

// TestFastDecodeValues spells out a few results, in case encoding/json and
// the fast path ever agree on something wrong.
func TestFastDecodeValues(t *testing.T) {
	var r Record
	if !decodeFast([]byte(benchLogin), &r) {
		t.Fatal("fast path refused the login")
	}
	if r.Type != TypeLogin || r.ASN != 2516 || !r.OK || !reflect.DeepEqual(r.Factors, []string{"password", "email_otp"}) ||
		r.Time.Nanosecond() != 120000000 || r.UA != "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0" {
		t.Errorf("login decoded as %+v", r)
	}
	r = Record{}
	if !decodeFast([]byte(`{"factors":[]}`), &r) || r.Factors == nil || len(r.Factors) != 0 {
		t.Errorf("[] decoded to %#v, want an empty slice", r.Factors)
	}
}

func TestFastDecodeAllocs(t *testing.T) {
	data := []byte(benchLogin)
	var r Record
	allocs := testing.AllocsPerRun(100, func() {
		r = Record{}
		if !decodeFast(data, &r) {
			t.Fatal("fast path refused the login")
		}
	})
	// id, account, ip, country, device, ua and the factors slice: the
	// closed-set values are constants and the empty session is free.
	if allocs > 7 {
		t.Errorf("%v allocations per login, want at most 7", allocs)
	}
}

// FuzzFastDecode checks that whatever the fast path takes, json.Unmarshal
// takes too and decodes the same, and that decodeInto gives exactly what
// it gave before the fast path, errors included.
func FuzzFastDecode(f *testing.F) {
	for _, tt := range fastCases {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastDecode(t, data)
	})
}

func BenchmarkDecode(b *testing.B) {
	records := []struct{ name, in string }{{"order", benchOrder}, {"login", benchLogin}}
	paths := []struct {
		name   string
		decode func([]byte, *Record) error
	}{{"json", decodeIntoJSON}, {"fast", decodeInto}}
	for _, p := range paths {
		for _, rec := range records {
			b.Run(p.name+"/"+rec.name, func(b *testing.B) {
				data := []byte(rec.in)
				var r Record
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					r = Record{}
					if err := p.decode(data, &r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestFastDecodeCoversEveryField checks that the fast path decodes every
// field of Record and Holding: a field added to them but not to the fast
// path would otherwise be skipped as unknown.
func TestFastDecodeCoversEveryField(t *testing.T) {
	value := func(f reflect.StructField) string {
		switch f.Type {
		case reflect.TypeFor[time.Time]():
			return `"2025-03-26T09:00:00.5+09:00"`
		case reflect.TypeFor[[]string]():
			return `["a","b"]`
		case reflect.TypeFor[[]Holding]():
			var b strings.Builder
			for i := range reflect.TypeFor[Holding]().NumField() {
				h := reflect.TypeFor[Holding]().Field(i)
				b.WriteString(`,"` + jsonName(h) + `":` + scalar(t, h.Type.Kind()))
			}
			return `[{` + b.String()[1:] + `}]`
		}
		return scalar(t, f.Type.Kind())
	}
	rt := reflect.TypeFor[Record]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		in := `{"` + jsonName(f) + `":` + value(f) + `}`
		var r Record
		if !decodeFast([]byte(in), &r) {
			t.Errorf("fast path refuses %s", in)
			continue
		}
		if reflect.ValueOf(r).Field(i).IsZero() {
			t.Errorf("fast path leaves %s zero in %s", f.Name, in)
		}
		checkFastDecode(t, []byte(in))
	}
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

func scalar(t *testing.T, k reflect.Kind) string {
	switch k {
	case reflect.String:
		return `"v"`
	case reflect.Int64:
		return `7`
	case reflect.Float64:
		return `1.5`
	case reflect.Bool:
		return `true`
	}
	t.Fatalf("no test value for a %v field", k)
	return ""
}

// TestValidateMessages pins messages of the validator's closed-set checks,
// which build their text only on failure.
func TestValidateMessages(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"id":"x","type":"login","time":"2025-03-26T09:00:00+09:00","account":"A","method":"password","factors":["password","yubikey","x"]}`,
			`field factors[1]: "yubikey" is not one of ["password" "passkey" "totp" "email_otp" "sms_otp"]`},
		{`{"id":"x","type":"login","time":"2025-03-26T09:00:00+09:00","account":"A","channel":"fax","method":"password"}`,
			`field channel: "fax" is not one of ["web" "app" "api"]`},
		{`{"id":"x","type":"order","time":"2025-03-26T09:00:00+09:00","account":"A","order_id":"o","symbol":"s","qty":1}`,
			`field side: missing (a order record needs one of ["buy" "sell"])`},
		{`{"id":"x","type":"account","time":"2025-03-26T09:00:00+09:00","account":"A","factors":["totp",""]}`,
			`field factors[1]: missing (a account record needs one of ["password" "passkey" "totp" "email_otp" "sms_otp"])`},
	}
	for _, tt := range tests {
		if _, err := Decode([]byte(tt.in)); err == nil || err.Error() != tt.want {
			t.Errorf("got %v\nwant %s", err, tt.want)
		}
	}
	for _, in := range []string{benchOrder, benchLogin} {
		var r Record
		if err := decodeInto([]byte(in), &r); err != nil {
			t.Fatal(err)
		}
		if allocs := testing.AllocsPerRun(100, func() { _ = r.Validate() }); allocs != 0 {
			t.Errorf("Validate of a valid record allocates %v times", allocs)
		}
	}
}
