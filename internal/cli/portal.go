package cli

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/identity"
	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/population"
	"github.com/kabuto-sec/kabuto/internal/session"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/web"
	"github.com/kabuto-sec/kabuto/internal/webhook"
)

// DemoPassword is the password of every demo customer (demo only).
const DemoPassword = "kabuto-demo-2025"

// frontDoor is the customer-facing part of Kabuto: sign-in, sessions,
// step-up, lockout, self-lock, notifications and the customer portal.
//
// Its settings are the flags of frontFlags (and so KABUTO_PUBLIC_URL,
// KABUTO_SMTP_ADDR, … or their _FILE forms): the portal's origin, whose
// host is the passkey relying party id; SMTP (without it messages stay in
// the outbox, marked sent, as in the demo mailbox); signed webhooks.
type frontDoor struct {
	db       *store.DB
	log      *slog.Logger
	outbox   *notify.Outbox
	id       *identity.Service
	sessions *session.Store
	portal   *web.Portal
	origin   string    // --public-url, "" when unset
	deadline time.Time // --passkey-deadline, zero when unset
	opts     appOptions
}

// newFrontDoor prepares the front door before the brokerage exists.
func newFrontDoor(ctx context.Context, db *store.DB, log *slog.Logger, o appOptions) (*frontDoor, error) {
	fd := &frontDoor{db: db, log: log, opts: o, outbox: &notify.Outbox{Webhook: o.webhookURL != ""}}
	fd.origin = strings.TrimRight(o.publicURL, "/")
	rpID, origins := "localhost", []string{"http://localhost:8080"}
	if fd.origin != "" {
		u, err := url.Parse(fd.origin)
		if err != nil || u.Host == "" {
			return nil, usageError{fmt.Errorf("--public-url %q: want an origin such as https://kabuto.example", fd.origin)}
		}
		rpID, origins = u.Hostname(), []string{fd.origin}
	}
	if d := o.passkeyDeadline; d != "" {
		t, err := time.ParseInLocation("2006-01-02", d, clock.JST)
		if err != nil {
			return nil, usageError{fmt.Errorf("--passkey-deadline %q: want a date such as 2027-03-31", d)}
		}
		fd.deadline = t
	}
	var err error
	fd.id, err = identity.New(identity.Config{DB: db, Outbox: fd.outbox, Log: log, Now: o.clock.Now, RPID: rpID, Origins: origins, LoginRecords: true})
	if err != nil {
		return nil, err
	}
	fd.sessions = session.New(session.Config{DB: db, Now: o.clock.Now})
	return fd, nil
}

// inTx runs inside the transaction of every record the brokerage stores:
// it queues the customer's notice of an executed withdrawal, bank or
// contact change or large order, so the notice exists exactly when the
// action committed. Refused actions (stored without effect) get none.
// The brokerage reads what the action did, notify decides the notice and
// identity writes it to the customer.
func (fd *frontDoor) inTx(ctx context.Context, tx *sql.Tx, r *event.Record) error {
	act, ok, err := broker.ActionOf(ctx, tx, r)
	if err != nil || !ok {
		return err
	}
	n, ok := notify.NoticeOf(act)
	if !ok {
		return nil
	}
	return fd.id.NotifyAction(ctx, tx, r, n, web.Previous(ctx))
}

// mount registers the front door's routes and starts its workers.
func (fd *frontDoor) mount(ctx context.Context, a *app) error {
	pol := web.DefaultPolicy()
	pol.Deadline = fd.deadline
	var reopened web.Reopened
	if a.office != nil {
		reopened = a.office
	}
	p, err := web.New(web.Config{DB: a.db, Broker: a.broker, Identity: fd.id, Sessions: fd.sessions, Log: fd.log, Policy: pol,
		Secure: strings.HasPrefix(fd.origin, "https://"), Key: append([]byte("portal-csrf:"), a.key...), SignUpCash: 3_000_000, Reopened: reopened})
	if err != nil {
		return err
	}
	fd.portal = p
	p.Register(a.server.Mux())
	// Every sign-in is a decision of the guard, like every other action.
	fd.id.SetGuard(a.pipe)
	// The customer's self-lock holds on every channel, not only the portal.
	a.broker.SetGate(func(ctx context.Context, account string, op broker.GateOp) error {
		return fd.id.CheckSelfLock(ctx, account, identity.Op{Kind: op.Kind, Side: op.Side, Foreign: op.Foreign})
	})
	senders := map[string]notify.Sender{notify.ChannelEmail: notify.Mailbox{}}
	if o := fd.opts; o.smtpAddr != "" {
		s, err := o.mail.smtp(o.smtpAddr, o.smtpFrom)
		if err != nil {
			return err
		}
		senders[notify.ChannelEmail] = s
	}
	if o := fd.opts; o.webhookURL != "" {
		senders[notify.ChannelWebhook] = webhook.Sender{URL: o.webhookURL, Secret: []byte(o.webhookSecret)}
	}
	w := &notify.Worker{DB: a.db, Senders: senders, Log: fd.log, Now: fd.opts.clock.Now}
	go w.Run(ctx, 2*time.Second)
	return nil
}

// seedDemo gives the demo's customers their sign-in credentials: the demo
// password (one hash shared by all, which only a demo may do) and email
// codes. Nobody starts with a passkey: a person enrols one in the browser.
func (fd *frontDoor) seedDemo(ctx context.Context, a *app, people []population.Customer) error {
	fd.portal.SetDemo(true)
	hash, err := fd.id.HashPassword(ctx, DemoPassword)
	if err != nil {
		return err
	}
	const batch = 500
	for i := 0; i < len(people); i += batch {
		part := people[i:min(len(people), i+batch)]
		err := fd.db.Tx(ctx, func(tx *sql.Tx) error {
			for _, c := range part {
				if err := fd.id.Enrol(ctx, tx, c.ID, "", hash); err != nil {
					return fmt.Errorf("identity of %s: %w", c.ID, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// demoNotes is printed by the demo: how to sign in. Passkeys need a
// host name, not an IP address, so the portal is opened on localhost.
func (fd *frontDoor) demoNotes(base string) string {
	portal := strings.Replace(base, "127.0.0.1", "localhost", 1)
	if fd.origin == "" {
		u, err := url.Parse(portal)
		if err == nil && u.Hostname() == "localhost" {
			fd.id.SetOrigins("localhost", []string{portal})
		}
	} else {
		portal = fd.origin
	}
	return fmt.Sprintf(`  Portal:     %s/portal   (passkeys need this host name, not 127.0.0.1)
  Sign in:    any customer id (C0000001 …) with password %s, then the email code
              shown in the demo mailbox at %s/portal/mailbox; or open a new account there
  Then:       enrol a passkey under Security, sign out, sign in with it, trade, withdraw

`, portal, DemoPassword, portal)
}

// frontFlags registers the front door's flags on fs.
func frontFlags(fs *flag.FlagSet, o *appOptions) {
	fs.StringVar(&o.publicURL, "public-url", "", "the portal's origin as customers reach it, e.g. https://kabuto.example (its host is the passkey relying party id)")
	fs.StringVar(&o.smtpAddr, "smtp-addr", "", "SMTP server for customer email, host:port (unset: messages stay in the outbox)")
	fs.StringVar(&o.smtpFrom, "smtp-from", "no-reply@kabuto.invalid", "sender address of customer email")
	fs.StringVar(&o.webhookURL, "webhook-url", "", "also deliver notifications as signed webhooks to this URL")
	fs.StringVar(&o.webhookSecret, "webhook-secret", "", "HMAC key of the webhook signatures (use KABUTO_WEBHOOK_SECRET_FILE)")
	fs.StringVar(&o.passkeyDeadline, "passkey-deadline", "", "until this date (YYYY-MM-DD, JST) a customer without a passkey may approve a withdrawal to the registered bank with an emailed code; unset: passkeys are mandatory now (the portal offers enrolment at the withdrawal)")
}
