package notify

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// link matches anything that would take a reader to a page: a URL, a
// "www." host, a bare domain, or a path to a sign-in or password page.
var link = regexp.MustCompile(`(?i)(https?:|://|www\.|\.(com|jp|net|org|io)\b|/(portal|signin|sign-in|login|password|unlock)\b)`)

// TestNoLinks: no template carries a link, and no value placed into a
// message (a user agent, a device name, an attacker's input) can add one.
func TestNoLinks(t *testing.T) {
	for _, s := range TemplateText() {
		if link.MatchString(s) {
			t.Errorf("template carries a link: %q", link.FindString(s))
		}
	}
	hostile := []string{"https://kabuto-secure.example/signin", "www.kabuto-login.jp", "kabuto-support.com/password", "Mozilla/5.0 (+http://evil.example/login)", "javascript:alert(1)", "hxxps://x", "mailto:a@b.c"}
	for _, loc := range []string{"ja", "en"} {
		for _, k := range Kinds {
			for _, h := range hostile {
				data := map[string]string{}
				for _, f := range []string{"Name", "Time", "Device", "Place", "Amount", "Bank", "Field", "Factor", "Code", "Purpose", "Count", "Left", "Scope", "Order", "Status"} {
					data[f] = h
				}
				subj, body, err := Render(Message{Kind: k, Locale: loc, Data: data})
				if err != nil {
					t.Fatal(err)
				}
				if m := link.FindString(subj + "\n" + body); m != "" && !strings.HasPrefix(h, "hxxps") {
					t.Errorf("%s/%s with %q: message carries %q", loc, k, h, m)
				}
			}
		}
	}
}

func TestEveryKindInBothLanguages(t *testing.T) {
	for _, loc := range []string{"ja", "en"} {
		for _, k := range Kinds {
			if _, ok := templates[loc][k]; !ok {
				t.Errorf("no %s template for %s", loc, k)
			}
		}
	}
}

func FuzzClean(f *testing.F) {
	f.Add("Mozilla/5.0 (+http://x.example/login)")
	f.Add("www.example.jp")
	f.Fuzz(func(t *testing.T, s string) {
		c := Clean(s)
		if strings.Contains(c, "://") || strings.Contains(strings.ToLower(c), "www.") {
			t.Fatalf("Clean(%q) = %q still links", s, c)
		}
	})
}

func TestWorkerRetriesWithBackoff(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST)
		o := &Outbox{Webhook: true}
		if err := o.Enqueue(ctx, db, Message{Account: "C1", To: "a@example.jp", Kind: KindWithdrawal, Data: map[string]string{"Amount": "¥10,000"}}, now); err != nil {
			t.Fatal(err)
		}
		// The webhook's receiver is down for the first two attempts.
		var hits atomic.Int64
		var sentMail atomic.Int64
		w := &Worker{DB: db, Now: func() time.Time { return now }, Backoff: 10 * time.Second, Senders: map[string]Sender{
			ChannelEmail: SenderFunc(func(context.Context, Delivery) error { sentMail.Add(1); return nil }),
			ChannelWebhook: SenderFunc(func(context.Context, Delivery) error {
				if hits.Add(1) < 3 {
					return errors.New("webhook answered 502")
				}
				return nil
			}),
		}}
		n, err := w.RunOnce(ctx)
		if err != nil || n != 1 || sentMail.Load() != 1 {
			t.Fatalf("first run: sent %d, mail %d, %v", n, sentMail.Load(), err)
		}
		if n, _ := w.RunOnce(ctx); n != 0 {
			t.Fatal("retried before the backoff")
		}
		now = now.Add(10 * time.Second)
		w.RunOnce(ctx) // second failure: next in 20 s
		now = now.Add(15 * time.Second)
		if n, _ := w.RunOnce(ctx); n != 0 {
			t.Fatal("retried before the doubled backoff")
		}
		now = now.Add(5 * time.Second)
		if n, err := w.RunOnce(ctx); n != 1 || err != nil {
			t.Fatalf("third attempt: %d, %v", n, err)
		}
		var pending int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE status <> 'sent'`).Scan(&pending)
		if pending != 0 {
			t.Fatalf("%d messages not sent", pending)
		}
	})
}

func TestEnqueueRollsBackWithTransaction(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	boom := errors.New("action failed")
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if err := (&Outbox{}).Enqueue(ctx, tx, Message{Account: "C1", To: "a@example.jp", Kind: KindBank}, time.Now()); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	var n int
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&n)
	if n != 0 {
		t.Fatal("a message outlived its rolled-back action")
	}
}
