package pipeline

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/guard"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Log stores decisions and alerts in the database. Decisions on money
// movement are written before Decision returns (a store that is down
// refuses the withdrawal); the rest are written by a background writer
// that commits them in groups, and once that writer fails every later
// decision is refused until it recovers, so nothing is decided unrecorded
// for long.
type Log struct {
	db  *store.DB
	log *slog.Logger

	mu      sync.Mutex
	pending []row
	wake    chan struct{}
	failed  error
}

type row struct {
	args []any
	done chan error // nil: nobody waits
}

// NewLog returns a Log on db. Run must be running for decisions that are
// not money movement to be written.
func NewLog(db *store.DB, log *slog.Logger) *Log {
	if log == nil {
		log = slog.Default()
	}
	return &Log{db: db, log: log, wake: make(chan struct{}, 1)}
}

// rowsPerInsert rows go in one INSERT (13 parameters each, well under
// both databases' limits).
const (
	rowsPerInsert = 200
	decisionCols  = 13
)

var multiInserts sync.Map // dialect and rows → SQL text

// multiInsert returns an INSERT of n decision rows. SQLite gets anonymous
// ? parameters: it resolves named ones ($N) by a linear search per
// parameter, which costs more than the insert itself at thousands of
// parameters.
func multiInsert(d store.Dialect, n int) string {
	key := string(d) + strconv.Itoa(n)
	if q, ok := multiInserts.Load(key); ok {
		return q.(string)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO decisions (event, time_us, account, type, action, factor, score, reasons, policy, rules, features, shadow, record) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := range decisionCols {
			if j > 0 {
				b.WriteByte(',')
			}
			if d == store.SQLite {
				b.WriteByte('?')
			} else {
				fmt.Fprintf(&b, "$%d", i*decisionCols+j+1)
			}
		}
		b.WriteByte(')')
	}
	b.WriteString(` ON CONFLICT (event) DO NOTHING`)
	q := b.String()
	multiInserts.Store(key, q)
	return q
}

const insertDecision = `INSERT INTO decisions (event, time_us, account, type, action, factor, score, reasons, policy, rules, features, shadow, record)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (event) DO NOTHING`

// Decision records res, the decision on r.
func (l *Log) Decision(ctx context.Context, r *event.Record, res *risk.Result) error {
	d := &res.Decision
	rules, _ := json.Marshal(res.Rules)
	feats := AppendFeatures(nil, res.Features)
	shadow := ""
	if res.Shadow != nil {
		shadow = string(res.Shadow.AppendJSON(nil))
	}
	args := []any{d.Event, store.Micros(d.Time), d.Account, string(r.Type), d.Action, d.Factor, int64(d.Score),
		strings.Join(d.Reasons, " "), d.Policy, string(rules), string(feats), shadow, string(r.AppendJSON(nil))}
	if r.Type.MoneyMovement() {
		_, err := l.db.ExecContext(ctx, insertDecision, args...)
		if err != nil {
			return fmt.Errorf("pipeline: recording the decision on %s: %w", r.ID, err)
		}
		return nil
	}
	l.mu.Lock()
	if l.failed != nil {
		err := l.failed
		l.mu.Unlock()
		return fmt.Errorf("pipeline: decision log is failing: %w", err)
	}
	if len(l.pending) >= 100_000 {
		l.mu.Unlock()
		return errors.New("pipeline: decision log is backed up")
	}
	l.pending = append(l.pending, row{args: args})
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run writes queued decisions until ctx ends, then writes what is left.
func (l *Log) Run(ctx context.Context) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.Flush(context.Background())
			return
		case <-l.wake:
		case <-t.C:
		}
		l.Flush(ctx)
	}
}

// Flush writes every queued decision now, in one transaction.
func (l *Log) Flush(ctx context.Context) error {
	l.mu.Lock()
	batch := l.pending
	l.pending = nil
	l.mu.Unlock()
	if len(batch) == 0 {
		l.mu.Lock()
		err := l.failed
		l.mu.Unlock()
		if err != nil { // probe: clear the failure once the store answers
			if perr := l.db.PingContext(ctx); perr == nil {
				l.mu.Lock()
				l.failed = nil
				l.mu.Unlock()
				l.log.Info("decision log recovered")
			}
		}
		return err
	}
	err := l.db.Tx(ctx, func(tx *sql.Tx) error {
		for i := 0; i < len(batch); i += rowsPerInsert {
			part := batch[i:min(len(batch), i+rowsPerInsert)]
			args := make([]any, 0, len(part)*decisionCols)
			for _, r := range part {
				args = append(args, r.args...)
			}
			if _, err := tx.ExecContext(ctx, multiInsert(l.db.Dialect, len(part)), args...); err != nil {
				return err
			}
		}
		return nil
	})
	l.mu.Lock()
	if err != nil {
		l.failed = err
		l.pending = append(batch, l.pending...) // keep them for the next try
		if len(l.pending) > 100_000 {
			l.pending = l.pending[:100_000]
		}
		l.log.Error("decision log failed; refusing decisions until it recovers", "err", err, "queued", len(l.pending))
	} else {
		l.failed = nil
	}
	l.mu.Unlock()
	return err
}

// Alert records a.
func (l *Log) Alert(ctx context.Context, a *event.Alert) error {
	_, err := l.db.ExecContext(ctx, `INSERT INTO alerts (alert, time_us, kind, symbol, score, action, campaign, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (alert) DO UPDATE SET score = excluded.score, action = excluded.action, campaign = excluded.campaign, body = excluded.body`,
		a.Alert, store.Micros(a.Time), a.Kind, a.Symbol, int64(a.Score), a.Action, a.Campaign, string(a.AppendJSON(nil)))
	return err
}

// Decisions returns stored decisions, newest first: of one account, or of
// one event, or all; at most limit.
func (l *Log) Decisions(ctx context.Context, account, eventID string, limit int) ([]guard.Explained, error) {
	q := `SELECT event, time_us, account, type, action, factor, score, reasons, policy, rules, features, shadow, record FROM decisions`
	var args []any
	switch {
	case eventID != "":
		q += ` WHERE event = $1 ORDER BY time_us DESC, event DESC LIMIT $2`
		args = []any{eventID, limit}
	case account != "":
		q += ` WHERE account = $1 ORDER BY time_us DESC, event DESC LIMIT $2`
		args = []any{account, limit}
	default:
		q += ` ORDER BY time_us DESC, event DESC LIMIT $1`
		args = []any{limit}
	}
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []guard.Explained{}
	for rows.Next() {
		var s guard.Explained
		var us, score int64
		var reasons, rules, feats, shadow, rec string
		if err := rows.Scan(&s.Event, &us, &s.Account, &s.Type, &s.Action, &s.Factor, &score, &reasons, &s.Policy, &rules, &feats, &shadow, &rec); err != nil {
			return nil, err
		}
		s.Time, s.Score, s.Reasons = store.FromMicros(us), int(score), strings.Fields(reasons)
		if s.Reasons == nil {
			s.Reasons = []string{}
		}
		s.Rules, s.Features, s.Record = json.RawMessage(rules), json.RawMessage(feats), json.RawMessage(rec)
		if shadow != "" {
			s.Shadow = json.RawMessage(shadow)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Alerts returns stored alerts, newest first, optionally for one symbol.
func (l *Log) Alerts(ctx context.Context, symbol string, since time.Time, limit int) ([]event.Alert, error) {
	q := `SELECT body FROM alerts WHERE time_us >= $1 ORDER BY time_us DESC, alert DESC LIMIT $2`
	args := []any{store.Micros(since), limit}
	if symbol != "" {
		q = `SELECT body FROM alerts WHERE time_us >= $1 AND symbol = $2 ORDER BY time_us DESC, alert DESC LIMIT $3`
		args = []any{store.Micros(since), symbol, limit}
	}
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []event.Alert{}
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var a event.Alert
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// AppendFeatures appends the feature values as one JSON object with sorted
// keys: the same output as json.Marshal, at a fraction of the cost on the
// decision path.
func AppendFeatures(b []byte, m map[string]any) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = event.AppendString(b, k)
		b = append(b, ':')
		switch v := m[k].(type) {
		case bool:
			b = strconv.AppendBool(b, v)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				b = append(b, "null"...)
			} else {
				b = appendFloat(b, v)
			}
		case string:
			b = event.AppendString(b, v)
		default:
			j, err := json.Marshal(v)
			if err != nil {
				j = []byte("null")
			}
			b = append(b, j...)
		}
	}
	return append(b, '}')
}

// appendFloat writes f as encoding/json does.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
