package webhook

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/notify"
)

// TestSendSignsAndFailsOnNon2xx: the receiver can check the signature
// over the exact body with the shared secret and the time given; a wrong
// secret does not verify; any answer but 2xx is an error for the outbox
// to retry.
func TestSendSignsAndFailsOnNon2xx(t *testing.T) {
	now := time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST)
	answer := http.StatusOK
	var got notify.Delivery
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sig := r.Header.Get(Header)
		if !hmac.Equal([]byte(sig), []byte(Sign([]byte("s3cret"), now, body))) {
			t.Errorf("signature %q does not verify over the body", sig)
		}
		if hmac.Equal([]byte(sig), []byte(Sign([]byte("other"), now, body))) {
			t.Error("a different secret verifies")
		}
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Error(err)
		}
		w.WriteHeader(answer)
	}))
	defer srv.Close()
	s := Sender{URL: srv.URL, Secret: []byte("s3cret"), Now: func() time.Time { return now }}
	d := notify.Delivery{ID: "M1", Account: "C1", Channel: notify.ChannelWebhook, Address: "secret address", Kind: string(notify.KindWithdrawal), Subject: "出金", Body: "本文", Ref: "R-1"}
	if err := s.Send(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if got.ID != "M1" || got.Ref != "R-1" || got.Address != "" {
		t.Errorf("delivered %+v (the address must not leave)", got)
	}
	answer = http.StatusBadGateway
	if err := s.Send(context.Background(), d); err == nil {
		t.Error("a 502 answer counted as delivered")
	}
	if err := (Sender{URL: "http://127.0.0.1:1/", Now: func() time.Time { return now }}).Send(context.Background(), d); err == nil {
		t.Error("an unreachable receiver counted as delivered")
	}
}

// TestSignFormat pins the signature header's format.
func TestSignFormat(t *testing.T) {
	got := Sign([]byte("k"), time.Unix(1700000000, 0), []byte(`{}`))
	if len(got) != len("t=1700000000,v1=")+64 || got[:16] != "t=1700000000,v1=" {
		t.Errorf("signature %q", got)
	}
}
