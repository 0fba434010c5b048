package identity

import (
	"context"
	"database/sql"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/notify"
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
