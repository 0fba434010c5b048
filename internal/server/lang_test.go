package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/reason"
)

func TestAcceptLanguage(t *testing.T) {
	for _, tt := range []struct{ header, want string }{
		{"", "en"},
		{"ja", "ja"},
		{"ja-JP,ja;q=0.9,en-US;q=0.8,en;q=0.7", "ja"},
		{"en-GB, ja;q=0.9", "en"},
		{"en;q=0.5, ja;q=0.8", "ja"},
		{"JA", "ja"},
		{"fr, ja;q=0.1", "ja"},
		{"fr, de", "en"},
		{"ja;q=0", "en"},
		{"ja;q=2", "en"},
		{"ja;q=abc, en", "en"},
		{"*", "en"},
		{";;;,,,=", "en"},
	} {
		if got := acceptLanguage(tt.header); got != tt.want {
			t.Errorf("acceptLanguage(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

// FuzzAcceptLanguage: any header gives ja or en, never a panic.
func FuzzAcceptLanguage(f *testing.F) {
	for _, s := range []string{"", "ja", "en-US,en;q=0.9,ja;q=0.8", "ja;q=", ";", "ja-;q=0.5,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if got := acceptLanguage(h); got != "ja" && got != "en" {
			t.Fatalf("acceptLanguage(%q) = %q", h, got)
		}
	})
}

// TestErrorWordsFollowAcceptLanguage: the API's error body keeps its
// fields; the status comes from the catalogue, the words in the language
// the request prefers, the parameters alike in both.
func TestErrorWordsFollowAcceptLanguage(t *testing.T) {
	s := &Server{cfg: Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	for _, tt := range []struct {
		name, lang string
		err        error
		status     int
		code, msg  string
		params     map[string]any
	}{
		{"english by default", "", reason.E("insufficient_cash.withdraw", "amount_jpy", reason.Yen(120000)), 409, "insufficient_cash",
			"That is more than you can withdraw (you asked for ¥120,000)", map[string]any{"amount_jpy": 120000.0}},
		{"japanese preferred", "ja,en;q=0.5", reason.E("insufficient_cash.withdraw", "amount_jpy", reason.Yen(120000)), 409, "insufficient_cash",
			"出金できる金額を超えています（ご依頼 120,000円）", map[string]any{"amount_jpy": 120000.0}},
		{"lot", "en", reason.E(reason.BadLot, "symbol", "7203", "lot", 100), 400, "bad_lot",
			"Issue 7203 trades in lots of 100 shares", map[string]any{"symbol": "7203", "lot": 100.0}},
		{"a word", "ja", reason.E("insufficient_holdings.sell", "symbol", "7203", "kind", reason.W("kind", "nisa"), "qty", 200), 409, "insufficient_holdings",
			"NISA口座の 7203 の売却可能株数が足りません（ご注文 200 株）", map[string]any{"symbol": "7203", "kind": "nisa", "qty": 200.0}},
		{"refusal outside the catalogue", "en", reason.New(http.StatusBadRequest, reason.InvalidField, "since must be an RFC 3339 time"), 400, "invalid_field",
			"since must be an RFC 3339 time", nil},
		{"outside the catalogue, in japanese", "ja", reason.New(http.StatusBadRequest, reason.InvalidField, "since must be an RFC 3339 time"), 400, "invalid_field",
			reason.Catalogue[reason.InvalidField].JA, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/v1/accounts/C1/withdrawals", nil)
			if tt.lang != "" {
				r.Header.Set("Accept-Language", tt.lang)
			}
			w := httptest.NewRecorder()
			s.writeError(w, r, tt.err)
			var body struct {
				Error   string         `json:"error"`
				Message string         `json:"message"`
				Params  map[string]any `json:"params"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if w.Code != tt.status || body.Error != tt.code || body.Message != tt.msg {
				t.Errorf("got %d %s %q, want %d %s %q", w.Code, body.Error, body.Message, tt.status, tt.code, tt.msg)
			}
			if len(body.Params) != len(tt.params) {
				t.Errorf("params %v, want %v", body.Params, tt.params)
			}
			for k, v := range tt.params {
				if body.Params[k] != v {
					t.Errorf("params[%s] = %v, want %v", k, body.Params[k], v)
				}
			}
		})
	}
}
