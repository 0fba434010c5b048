// Package webhook delivers the notification outbox's webhook channel: each
// message is posted as JSON to the brokerage's URL, signed so that the
// receiver can check where it came from and how fresh it is. It is the
// notify.Sender of notify.ChannelWebhook; notify itself speaks no HTTP.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/notify"
)

// Header is the request header that carries the signature.
const Header = "X-Kabuto-Signature"

// Sender posts each message as JSON to URL, signed with Secret: the
// X-Kabuto-Signature header is "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>">", so the receiver can check origin and freshness.
type Sender struct {
	URL    string
	Secret []byte
	Client *http.Client // nil: a client with a 10 s timeout
	Now    func() time.Time
}

// Sign returns the signature header value of body at time t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// Send posts d; any answer but 2xx is an error, so the outbox retries.
func (h Sender) Send(ctx context.Context, d notify.Delivery) error {
	body, err := json.Marshal(d)
	if err != nil {
		return err
	}
	now := clock.Real{}.Now()
	if h.Now != nil {
		now = h.Now()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(Header, Sign(h.Secret, now, body))
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}
