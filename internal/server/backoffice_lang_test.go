package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/reason"
)

// TestBackOfficeRefusalsFollowAcceptLanguage: the back-office API's own
// refusals keep the statuses and codes they always had, and word
// themselves in the language the request prefers, one language at a time.
func TestBackOfficeRefusalsFollowAcceptLanguage(t *testing.T) {
	s := &Server{cfg: Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	_, noOffice := s.backOffice()
	_, _, noKey := idemKey("", "freeze", nil)
	_, _, longKey := idemKey(strings.Repeat("k", 129), "freeze", nil)
	_, notAnalyst := analystOf(httptest.NewRequest("POST", "/api/v1/approvals/A1", nil))
	for _, tt := range []struct {
		name   string
		err    error
		status int
		code   string
		ja, en string // words each language must contain
	}{
		{"no back office", noOffice, 503, reason.Unavailable, "バックオフィス", "runs no back office"},
		{"no idempotency key", noKey, 400, reason.IdempotencyKeyRequired, "Idempotency-Key", "Send an Idempotency-Key header"},
		{"idempotency key too long", longKey, 400, reason.IdempotencyKeyRequired, "128バイト", "at most 128 bytes"},
		{"lift in one call", liftNeedsFourEyes("7203"), 403, "four_eyes_required", "7203 の買付停止の解除", "POST /api/v1/halts/7203/lift"},
		{"no analyst key", notAnalyst, 403, ReasonAnalystKeyRequired, "アナリスト個人の API キー", "kabuto analyst --create"},
	} {
		for _, lang := range []string{"ja", "en"} {
			t.Run(tt.name+"/"+lang, func(t *testing.T) {
				if tt.err == nil {
					t.Fatal("no refusal")
				}
				r := httptest.NewRequest("POST", "/api/v1/approvals/A1", nil)
				r.Header.Set("Accept-Language", lang)
				w := httptest.NewRecorder()
				s.writeError(w, r, tt.err)
				var body struct{ Error, Message string }
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
					t.Fatal(err)
				}
				want := tt.en
				if lang == "ja" {
					want = tt.ja
				}
				if w.Code != tt.status || body.Error != tt.code || !strings.Contains(body.Message, want) {
					t.Errorf("got %d %s %q, want %d %s and %q", w.Code, body.Error, body.Message, tt.status, tt.code, want)
				}
				if hasKana := strings.ContainsFunc(body.Message, func(r rune) bool { return r >= 0x3040 && r <= 0x30ff }); hasKana != (lang == "ja") {
					t.Errorf("%s words %q", lang, body.Message)
				}
				if strings.Contains(body.Message, "{") {
					t.Errorf("placeholder left: %q", body.Message)
				}
			})
		}
	}
}
