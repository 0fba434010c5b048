package identity

import (
	"context"
	"database/sql"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/session"
)

// NotifyAction queues n, the notice of the action r, for r's customer
// inside tx, the transaction that stored r, so that the notice exists
// exactly when the action committed. It is written in the customer's
// language and names the device and place r came from; previous is the
// email address the account had before r, where a notice that asks for
// it (notify.Notice.ToPrevious) goes.
func (s *Service) NotifyAction(ctx context.Context, tx *sql.Tx, r *event.Record, n notify.Notice, previous string) error {
	a, err := s.LookupAccount(ctx, tx, r.Account)
	if err != nil {
		return err
	}
	c := session.Client{IP: r.IP, Network: session.NetworkOf(r.IP), ASN: r.ASN, Country: r.Country, UA: r.UA, Device: r.Device}
	m := s.message(a, n.Kind, c, r.Time, n.Data(a.Locale))
	if n.ToPrevious && previous != "" {
		m.To = previous
	}
	return s.cfg.Outbox.Enqueue(ctx, tx, m, r.Time)
}

// BackOfficeNotices tells customers what the back office did to their
// accounts (a freeze, a compensation, …): it is the back office's
// Notifier (cases.Config.Notify).
type BackOfficeNotices struct{ s *Service }

// BackOfficeNotices returns the back office's way to tell customers.
func (s *Service) BackOfficeNotices() BackOfficeNotices { return BackOfficeNotices{s} }

// Notify queues a message of kind to account inside tx, the transaction
// of what it reports. An account identity does not know (integration
// mode, where the brokerage keeps its customers itself) gets none.
func (n BackOfficeNotices) Notify(ctx context.Context, tx *sql.Tx, account, kind string, data map[string]string) error {
	a, err := n.s.LookupAccount(ctx, tx, account)
	if e := reason.As(err); e != nil && e.Code == reason.UnknownAccount {
		return nil
	} else if err != nil {
		return err
	}
	return n.s.notify(ctx, tx, a, notify.Kind(kind), session.Client{}, data)
}
