package pipeline

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Warm rebuilds the risk engine's profiles after a restart from what is
// stored since the given time: the reference records the brokerage logged
// (instruments, account snapshots, fills) and every decided action (the
// brokerage's and integration mode's), merged in time order. Decisions are
// made again only to learn from them; nothing is stored or enforced. The
// watchtower's windows (minutes to hours) start empty.
func Warm(ctx context.Context, db *store.DB, eng *risk.Engine, since time.Time) (int, error) {
	refs, err := db.QueryContext(ctx, `SELECT time_us, body FROM events WHERE type IN ('instrument', 'account', 'fill') AND time_us >= $1 ORDER BY time_us, id`, store.Micros(since))
	if err != nil {
		return 0, err
	}
	defer refs.Close()
	acts, err := db.QueryContext(ctx, `SELECT time_us, record FROM decisions WHERE time_us >= $1 ORDER BY time_us, event`, store.Micros(since))
	if err != nil {
		return 0, err
	}
	defer acts.Close()
	next := func(rows *sql.Rows) (int64, *event.Record, error) {
		if !rows.Next() {
			return 0, nil, rows.Err()
		}
		var us int64
		var body string
		if err := rows.Scan(&us, &body); err != nil {
			return 0, nil, err
		}
		r, err := event.Decode([]byte(body))
		if err != nil {
			return 0, nil, fmt.Errorf("stored record: %w", err)
		}
		return us, r, nil
	}
	rt, r, err := next(refs)
	if err != nil {
		return 0, err
	}
	at, a, err := next(acts)
	if err != nil {
		return 0, err
	}
	n := 0
	var res risk.Result
	for r != nil || a != nil {
		if a == nil || (r != nil && rt <= at) {
			eng.Observe(r)
			rt, r, err = next(refs)
		} else {
			eng.DecideInto(a, &res, false)
			at, a, err = next(acts)
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Reference tells p (the guard and the watchtower) every instrument's
// reference data stored in the database: each instrument record the
// brokerage logged, oldest first, so that the latest of each symbol is
// the one in force. A live server calls it once at start, before the
// first action: the brokerage logs an instrument record only when an
// instrument is listed or changes, so without it the watchtower would
// know nothing of an issue's market, price or liquidity after a restart
// (or when the instruments were listed before the guard was wired) and
// could not tell Toyota from a thin ¥100 issue. It returns how many
// records it fed.
func Reference(ctx context.Context, db *store.DB, p *Pipeline) (int, error) {
	rows, err := db.QueryContext(ctx, `SELECT body FROM events WHERE type = 'instrument' ORDER BY time_us, id`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var recs []*event.Record
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return 0, err
		}
		r, err := event.Decode([]byte(body))
		if err != nil {
			return 0, fmt.Errorf("stored instrument record: %w", err)
		}
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	rows.Close() // the pipeline may write while it takes them in
	for _, r := range recs {
		if err := p.Observe(ctx, r); err != nil {
			return 0, err
		}
	}
	return len(recs), nil
}
