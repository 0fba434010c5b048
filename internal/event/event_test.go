package event

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

const sample = `{"id":"i1","type":"instrument","time":"2025-03-26T08:00:00+09:00","symbol":"7992","name":"Sailor Pen","market":"TSE_STANDARD","currency":"JPY","price":84,"price_jpy":84,"adv_shares":120000,"lot":100}
{"id":"a1","type":"account","time":"2025-03-26T08:00:00+09:00","account":"A1","opened":"2019-04-01","cash_jpy":150000,"holdings":[{"symbol":"7203","qty":300,"cost_jpy":720000,"kind":"nisa"}],"factors":["password","email_otp"],"email_hash":"e1","phone_hash":"p1","bank_hash":"b1","foreign_enabled":false,"margin_enabled":false}
{"id":"l1","type":"login","time":"2025-03-26T09:12:03.12+09:00","account":"A1","session":"","ip":"203.0.113.9","asn":16509,"country":"US","device":"d9","ua":"Mozilla/5.0","channel":"web","method":"password","factors":["password","email_otp"],"ok":true}
{"id":"o1","type":"order","time":"2025-03-26T09:13:00+09:00","account":"A1","session":"s1","ip":"203.0.113.9","asn":16509,"country":"US","device":"d9","ua":"Mozilla/5.0","channel":"web","order_id":"O1","symbol":"7203","side":"sell","qty":300,"price_type":"limit","limit_price":2400.5,"account_kind":"nisa","value_jpy":720150}
{"id":"b1","type":"bar","time":"2025-03-26T09:14:00+09:00","symbol":"7992","open":84,"high":86,"low":84,"close":85,"volume":42000}
{"id":"f1","type":"fill","time":"2025-03-26T09:14:00+09:00","account":"A1","order_id":"O2","symbol":"7992","side":"buy","qty":1000,"price":85,"value_jpy":85000}
{"id":"w1","type":"withdrawal","time":"2025-03-26T09:20:00+09:00","account":"A1","session":"s1","ip":"203.0.113.9","asn":16509,"country":"US","device":"d9","ua":"Mozilla/5.0","channel":"web","amount_jpy":50000,"bank_hash":"b1"}
{"id":"c1","type":"contact_change","time":"2025-03-26T09:21:00+09:00","account":"A1","session":"s1","ip":"203.0.113.9","asn":16509,"country":"US","device":"d9","ua":"Mozilla/5.0","channel":"web","field":"email","new_hash":"e2"}
{"id":"k1","type":"bank_change","time":"2025-03-26T09:22:00+09:00","account":"A1","session":"s1","ip":"203.0.113.9","asn":16509,"country":"US","device":"d9","ua":"Mozilla/5.0","channel":"web","bank_hash":"b2"}
{"id":"x1","type":"factor_add","time":"2025-03-26T09:23:00+09:00","account":"A1","session":"s1","ip":"203.0.113.9","asn":16509,"country":"US","device":"d9","ua":"Mozilla/5.0","channel":"web","factor":"totp"}
{"id":"x2","type":"factor_remove","time":"2025-03-26T09:24:00+09:00","account":"A1","session":"s1","ip":"203.0.113.9","asn":16509,"country":"US","device":"d9","ua":"Mozilla/5.0","channel":"web","factor":"passkey"}
{"id":"p1","type":"password_change","time":"2025-03-26T09:25:00+09:00","account":"A1","session":"s1","ip":"203.0.113.9","asn":16509,"country":"US","device":"d9","ua":"Mozilla/5.0","channel":"web"}
`

// TestRoundTrip checks that every type decodes and re-encodes to the same bytes.
func TestRoundTrip(t *testing.T) {
	rd := NewReader(strings.NewReader(sample))
	var out []byte
	n := 0
	for {
		r, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		out = r.AppendJSON(out)
		out = append(out, '\n')
	}
	if n != 12 {
		t.Fatalf("read %d records, want 12", n)
	}
	if string(out) != sample {
		t.Errorf("round trip differs:\n got %s\nwant %s", out, sample)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, in, field, msg string
	}{
		{"not object", `[1]`, "", "want a JSON object"},
		{"syntax", `{"id":`, "", "malformed JSON"},
		{"missing type", `{"id":"x","time":"2025-03-26T09:00:00+09:00"}`, "type", "missing"},
		{"missing id", `{"type":"bar","time":"2025-03-26T09:00:00+09:00"}`, "id", "missing"},
		{"bad time", `{"id":"x","type":"bar","time":"26/03/2025"}`, "time", "RFC 3339"},
		{"no offset", `{"id":"x","type":"bar","time":"2025-03-26T09:00:00"}`, "time", "RFC 3339"},
		{"qty string", `{"id":"x","type":"fill","time":"2025-03-26T09:00:00+09:00","qty":"100"}`, "qty", "want an integer"},
		{"qty float", `{"id":"x","type":"fill","time":"2025-03-26T09:00:00+09:00","qty":1.5}`, "qty", "want an integer"},
		{"side", `{"id":"x","type":"order","time":"2025-03-26T09:00:00+09:00","account":"A","order_id":"o","symbol":"s","side":"short","qty":100,"price_type":"market","account_kind":"cash"}`, "side", `"short" is not one of`},
		{"limit needs price", `{"id":"x","type":"order","time":"2025-03-26T09:00:00+09:00","account":"A","order_id":"o","symbol":"s","side":"buy","qty":100,"price_type":"limit","account_kind":"cash"}`, "limit_price", "positive"},
		{"action needs account", `{"id":"x","type":"withdrawal","time":"2025-03-26T09:00:00+09:00","amount_jpy":5,"bank_hash":"b"}`, "account", "missing"},
		{"bad channel", `{"id":"x","type":"password_change","time":"2025-03-26T09:00:00+09:00","account":"A","channel":"fax"}`, "channel", "not one of"},
		{"holding kind", `{"id":"x","type":"account","time":"2025-03-26T09:00:00+09:00","account":"A","holdings":[{"symbol":"s","qty":1,"kind":"ira"}]}`, "holdings[0].kind", "not one of"},
		{"bar range", `{"id":"x","type":"bar","time":"2025-03-26T09:00:00+09:00","symbol":"s","open":5,"high":4,"low":3,"close":4,"volume":1}`, "high", "between"},
		{"withdraw zero", `{"id":"x","type":"withdrawal","time":"2025-03-26T09:00:00+09:00","account":"A","amount_jpy":0,"bank_hash":"b"}`, "amount_jpy", "positive"},
		{"factor", `{"id":"x","type":"factor_add","time":"2025-03-26T09:00:00+09:00","account":"A","factor":"yubikey"}`, "factor", "not one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *Error", err)
			}
			if e.Field != tt.field || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("got field %q msg %q, want field %q msg containing %q", e.Field, e.Msg, tt.field, tt.msg)
			}
		})
	}
}

func TestReaderLinesUnknownAndOrder(t *testing.T) {
	in := `{"id":"1","type":"bar","time":"2025-03-26T09:00:00+09:00","symbol":"s","open":1,"high":1,"low":1,"close":1,"volume":0,"extra":{"ignored":true}}
{"id":"2","type":"quote","time":"2025-03-26T09:00:01+09:00"}
{"id":"3","type":"bar","time":"2025-03-26T08:59:00+09:00","symbol":"s","open":1,"high":1,"low":1,"close":1,"volume":0}
`
	rd := NewReader(strings.NewReader(in))
	if _, err := rd.Next(); err != nil {
		t.Fatalf("line 1 (unknown field is ignored): %v", err)
	}
	_, err := rd.Next()
	if err == nil || err.Error() != "line 3: field time: earlier than the record before it (2025-03-26T09:00:00+09:00): a stream is ordered by time" {
		t.Fatalf("got %v", err)
	}
	if rd.Unknown["quote"] != 1 {
		t.Errorf("unknown types: %v, want quote counted once", rd.Unknown)
	}
	rd = NewReader(strings.NewReader("{\"id\":\"1\",\"type\":\"password_change\",\"time\":\"2025-03-26T09:00:00Z\",\"account\":\"A\"}\n\n"))
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Next(); err == nil || !strings.HasPrefix(err.Error(), "line 2: blank line") {
		t.Fatalf("blank line: got %v", err)
	}
}

func TestAppendStringEscapes(t *testing.T) {
	got := string(AppendString(nil, "a\"b\\c\n<\x01>&\xff\u2028日本"))
	want := `"a\"b\\c\n\u003c\u0001\u003e\u0026\ufffd\u2028日本"`
	if got != want {
		t.Errorf("got %s want %s", got, want)
	}
}

// FuzzDecode checks that the decoder never panics, and that whatever it
// accepts re-encodes to a record it accepts again, unchanged.
func FuzzDecode(f *testing.F) {
	for _, line := range strings.Split(strings.TrimSpace(sample), "\n") {
		f.Add([]byte(line))
	}
	f.Add([]byte(`{"id":"x","type":"order","qty":-1}`))
	f.Add([]byte(`{"id":"x","type":"bar","time":"2025-03-26T09:00:00+09:00","open":"NaN"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		enc := r.AppendJSON(nil)
		r2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if enc2 := r2.AppendJSON(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzReader checks that the stream reader never panics and that every
// error it returns names its line.
func FuzzReader(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("{}\n\n{\"id\":1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := NewReader(bytes.NewReader(data))
		for range 1000 {
			_, err := rd.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Line == 0 {
					t.Fatalf("error without a line: %v", err)
				}
				return
			}
		}
	})
}
