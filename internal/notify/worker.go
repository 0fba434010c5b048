package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Delivery is one outbox row being delivered.
type Delivery struct {
	ID       string `json:"id"`
	Account  string `json:"account"`
	Channel  string `json:"channel"`
	Address  string `json:"-"`
	Kind     string `json:"kind"`
	Locale   string `json:"locale"`
	Subject  string `json:"subject"`
	Body     string `json:"body"`
	Attempts int    `json:"attempt"`
	// Ref is the message's reference code, which the customer can check
	// on the public "did we send this?" page.
	Ref string `json:"ref"`
}

// Sender delivers messages of one channel.
type Sender interface {
	Send(ctx context.Context, d Delivery) error
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context, d Delivery) error

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, d Delivery) error { return f(ctx, d) }

// Worker delivers the outbox.
type Worker struct {
	DB      *store.DB
	Senders map[string]Sender // by channel
	Now     func() time.Time  // nil: clock.Real
	Log     *slog.Logger
	// MaxAttempts before a message is marked failed (default 8).
	MaxAttempts int
	// Backoff is the first retry delay, doubled each attempt up to an hour
	// (default 10 s).
	Backoff time.Duration
	// Lease is how long a claimed message is left to its sender before
	// another worker may take it again (default 2 min).
	Lease time.Duration
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return clock.Real{}.Now()
}

// RunOnce delivers the messages that are due and reports how many were
// sent.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	now := w.now()
	maxA, backoff, lease := w.MaxAttempts, w.Backoff, w.Lease
	if maxA == 0 {
		maxA = 8
	}
	if backoff == 0 {
		backoff = 10 * time.Second
	}
	if lease == 0 {
		lease = 2 * time.Minute
	}
	rows, err := w.DB.QueryContext(ctx, `SELECT id, account, channel, address, kind, locale, subject, body, attempts, status, next_us, ref
		FROM outbox WHERE status IN ('pending', 'sending') AND next_us <= $1 ORDER BY next_us LIMIT 100`, store.Micros(now))
	if err != nil {
		return 0, err
	}
	type due struct {
		d      Delivery
		status string
		next   int64
	}
	var list []due
	for rows.Next() {
		var x due
		if err := rows.Scan(&x.d.ID, &x.d.Account, &x.d.Channel, &x.d.Address, &x.d.Kind, &x.d.Locale, &x.d.Subject, &x.d.Body, &x.d.Attempts, &x.status, &x.next, &x.d.Ref); err != nil {
			rows.Close()
			return 0, err
		}
		list = append(list, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	sent := 0
	for _, x := range list {
		// Claim: only one worker wins the conditional update.
		res, err := w.DB.ExecContext(ctx, `UPDATE outbox SET status = 'sending', attempts = attempts + 1, next_us = $1
			WHERE id = $2 AND status = $3 AND next_us = $4`, store.Micros(now.Add(lease)), x.d.ID, x.status, x.next)
		if err != nil {
			return sent, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		x.d.Attempts++
		s := w.Senders[x.d.Channel]
		if s == nil {
			err = fmt.Errorf("no sender for channel %q", x.d.Channel)
		} else {
			err = s.Send(ctx, x.d)
		}
		if err == nil {
			_, err = w.DB.ExecContext(ctx, `UPDATE outbox SET status = 'sent', sent_us = $1, last_error = '' WHERE id = $2`, store.Micros(w.now()), x.d.ID)
			if err != nil {
				return sent, err
			}
			sent++
			continue
		}
		status := "pending"
		if x.d.Attempts >= maxA {
			status = "failed"
		}
		delay := backoff << min(x.d.Attempts-1, 20)
		if delay > time.Hour || delay <= 0 {
			delay = time.Hour
		}
		if w.Log != nil {
			w.Log.WarnContext(ctx, "notification not delivered", "id", x.d.ID, "channel", x.d.Channel, "attempt", x.d.Attempts, "next", status, "err", err)
		}
		if _, uerr := w.DB.ExecContext(ctx, `UPDATE outbox SET status = $1, next_us = $2, last_error = $3 WHERE id = $4`,
			status, store.Micros(w.now().Add(delay)), truncate(err.Error(), 500), x.d.ID); uerr != nil {
			return sent, uerr
		}
	}
	return sent, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Run delivers the outbox every interval until ctx ends.
func (w *Worker) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := w.RunOnce(ctx); err != nil && !errors.Is(err, context.Canceled) && w.Log != nil {
			w.Log.ErrorContext(ctx, "outbox delivery", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Mailbox is a Sender that delivers nowhere: the message stays in the
// outbox, marked sent, where the demo's mailbox page shows it.
type Mailbox struct{}

// Send accepts d.
func (Mailbox) Send(context.Context, Delivery) error { return nil }

// Sent is a delivered (or pending) message as the demo mailbox shows it.
type Sent struct {
	ID      string
	Account string
	To      string
	Kind    string
	Subject string
	Body    string
	Status  string
	Created time.Time
}

// Messages returns the newest email messages, for one account or all.
func Messages(ctx context.Context, db *store.DB, account string, limit int) ([]Sent, error) {
	q := `SELECT id, account, address, kind, subject, body, status, created_us FROM outbox WHERE channel = 'email' AND ($1 = '' OR account = $1) ORDER BY created_us DESC, id LIMIT $2`
	rows, err := db.QueryContext(ctx, q, account, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Sent
	for rows.Next() {
		var s Sent
		var us int64
		if err := rows.Scan(&s.ID, &s.Account, &s.To, &s.Kind, &s.Subject, &s.Body, &s.Status, &us); err != nil {
			return nil, err
		}
		s.Created = store.FromMicros(us)
		out = append(out, s)
	}
	return out, rows.Err()
}
