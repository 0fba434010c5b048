package cli

import (
	"context"
	"database/sql"
	"log/slog"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/population"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// frontDoor is the customer-facing part of Kabuto: sign-in, sessions,
// step-up, lockout, self-lock, notifications and the customer portal.
type frontDoor struct{}

// newFrontDoor prepares the front door before the brokerage exists.
func newFrontDoor(ctx context.Context, db *store.DB, log *slog.Logger, o appOptions) (*frontDoor, error) {
	return &frontDoor{}, nil
}

// inTx runs inside the transaction of every record the brokerage stores
// (for example to queue notifications in the same transaction).
func (fd *frontDoor) inTx(ctx context.Context, tx *sql.Tx, r *event.Record) error { return nil }

// mount registers the front door's routes and starts its workers.
func (fd *frontDoor) mount(ctx context.Context, a *app) error { return nil }

// seedDemo gives the demo's customers their sign-in credentials.
func (fd *frontDoor) seedDemo(ctx context.Context, a *app, people []population.Customer) error {
	return nil
}

// demoNotes is printed by the demo: how to sign in.
func (fd *frontDoor) demoNotes(base string) string { return "" }
