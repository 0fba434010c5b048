package cli

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/cases"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// guardView is the guard as the back office tells it of halts and freezes.
type guardView struct{ p *pipeline.Pipeline }

func (g guardView) SetHalt(symbol string, halted bool) { g.p.SetHalt(symbol, halted) }
func (g guardView) SetFrozen(account string, frozen bool) {
	g.p.SetFrozen(account, frozen) // and, in a cluster, every node
}

// newBackOffice starts the back office and reads every freeze and halt in
// force back into the guard, so a restarted node refuses what it refused
// before.
func newBackOffice(ctx context.Context, db *store.DB, log *slog.Logger, b *broker.Broker, pipe *pipeline.Pipeline, fd *frontDoor) (*cases.Service, error) {
	office := cases.New(cases.Config{DB: db, Guard: guardView{pipe}, Sessions: fd.sessions, Ledger: b, Held: b, Notify: fd.id.BackOfficeNotices(), Log: log, Now: fd.opts.clock.Now})
	frozen, halted, err := office.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading freezes and halts back: %w", err)
	}
	log.Info("freezes and halts in force", "accounts_frozen", frozen, "instruments_halted", halted)
	return office, nil
}

// officeAlert carries out an alert's action through the back office: the
// halt or the freezes, durable and audited, and the cases it opens.
func officeAlert(ctx context.Context, log *slog.Logger, office *cases.Service, al event.Alert) {
	log.Warn("surveillance alert", "alert", al.Alert, "kind", al.Kind, "symbol", al.Symbol, "accounts", len(al.Accounts), "score", al.Score, "action", al.Action)
	if err := office.FromAlert(ctx, al); err != nil {
		log.Error("back office could not carry out the alert (the guard applies it until restart)", "alert", al.Alert, "err", err)
	}
}

// heldCase opens the case of a held action (office is nil only while the
// app is being built, before any action).
func heldCase(ctx context.Context, tx *sql.Tx, office *cases.Service, r *event.Record) error {
	if office == nil {
		return nil
	}
	return office.HeldTx(ctx, tx, r)
}
