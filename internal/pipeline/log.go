package pipeline

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/guard"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Log stores decisions and alerts in the database. Decisions on money
// movement and alerts are written before Decision and Alert return (a
// store that is down refuses the withdrawal); the rest are queued,
// encoded and written by a background writer (Run) that commits them in
// groups every FlushEvery, and once that writer fails every later
// decision is refused until it recovers, so nothing is decided
// unrecorded for long.
//
// While Run runs, the writer is the only goroutine of the log that writes:
// a decision on money movement or an alert is handed to it, which commits
// it (durably: synchronous=FULL on SQLite) before its queued rows, cutting
// their transaction short, and the caller waits for that commit. No
// request goroutine then waits on SQLite's write lock behind the writer's
// transaction, where SQLite's busy handler sleeps in steps of up to
// 100 ms (a p99 of 22.8 ms against 3.2 ms without the log, at 10,000
// decisions/s).
//
// A decision is encoded for its row at once and queued; the writer inserts
// the queue in multi-row statements prepared once. When decisions come
// faster than the database takes them, the queue is bounded: past
// waitQueued a decision waits for the writer to take the queue (the
// requests slow down to the database's pace instead of being refused).
type Log struct {
	db  *store.DB
	log *slog.Logger

	mu      sync.Mutex
	pending []row
	urgent  []*urgentWrite // written by the writer before pending
	// urgentN is len(urgent), read by the writer between its statements.
	urgentN atomic.Int32
	// running is set while Run runs: urgent writes go to it.
	running atomic.Bool
	wake    chan struct{}
	taken   chan struct{} // closed when the writer takes the queue
	failed  error
	// waitQueued is the queue's length at which a decision waits for the
	// writer (the constant, but for tests).
	waitQueued int

	writing sync.Mutex // one Flush at a time; guards batch, stmts and conn
	batch   []row      // the rows being written
	stmts   map[int]*sql.Stmt
	conn    *sql.Conn // the writer's own connection, on SQLite
	dconn   *sql.Conn // the writer's connection of the main pool (durable commits), on SQLite

	setsMu sync.Mutex
	sets   map[int64]storedSet // the feature sets known to be in the database, by id

	done     chan struct{} // closed when Run has returned
	doneOnce sync.Once
}

// storedSet is the keys a feature set id has in the database.
type storedSet struct {
	json string
	keys []string
}

// urgentWrite is a decision on money movement (row) or an alert whose
// caller waits until it is committed.
type urgentWrite struct {
	row   *row
	alert *event.Alert
	done  chan error
}

// row is a decision encoded for the decisions table.
type row struct {
	d                                        event.Decision // Reasons not used: see reasons
	typ                                      event.Type
	reasons, rules, features, shadow, record string
	// fset names the keys of features, a JSON array of values; nil when
	// features is the JSON object.
	fset *featureSet
}

// NewLog returns a Log on db. Run must be running for decisions that are
// not money movement to be written.
func NewLog(db *store.DB, log *slog.Logger) *Log {
	if log == nil {
		log = slog.Default()
	}
	return &Log{db: db, log: log, wake: make(chan struct{}, 1), taken: make(chan struct{}), waitQueued: waitQueued, stmts: map[int]*sql.Stmt{}, sets: map[int64]storedSet{}, done: make(chan struct{})}
}

const (
	decisionCols = 14
	// FlushEvery is how often the writer commits queued decisions. Each
	// commit has a cost of its own (the pages at the ends of the table and
	// its indexes are written again), so fewer, larger groups cost less
	// per decision: on SQLite, 33.3 µs at 400 a commit (20 ms at 20,000
	// decisions/s) against 39.2 µs at 100 (BenchmarkLogWrite, medians of
	// 5). A crash loses at most this much of the log of decisions that
	// move no money; those that do are written before their answer.
	FlushEvery = 20 * time.Millisecond
	// flushRows queued decisions wake the writer before FlushEvery.
	flushRows = 1024
	// txRows is the most rows one transaction of the writer holds, so
	// that a withdrawal's decision, written at once, never queues long
	// for SQLite's write lock behind it.
	txRows = 2048
	// waitQueued decisions waiting make the next wait until the writer
	// takes some (back-pressure: the requests slow down to what the
	// database writes, rather than being refused). Enough for the writer
	// to fall behind for a while (a checkpoint's fsync) without anyone
	// waiting.
	waitQueued = 8 * txRows
	// maxQueued decisions waiting refuse further decisions.
	maxQueued = 100_000
	// chunkRows is the most rows of one INSERT (14 parameters each, well
	// under both databases' limits).
	chunkRows = 128
)

// multiInsert returns an INSERT of n decision rows. SQLite gets anonymous
// ? parameters: it resolves named ones ($N) by a linear search per
// parameter, which costs more than the insert itself at thousands of
// parameters.
func multiInsert(d store.Dialect, n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO decisions (` + decisionColumns + `) VALUES `)
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
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(i*decisionCols + j + 1))
			}
		}
		b.WriteByte(')')
	}
	b.WriteString(` ON CONFLICT (event) DO NOTHING`)
	return b.String()
}

// decisionColumns are the columns of a decision's row, in the order of
// row.appendArgs.
const decisionColumns = `event, time_us, account, type, action, factor, score, reasons, policy, rules, features, feature_set, shadow, record`

const insertDecision = `INSERT INTO decisions (` + decisionColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (event) DO NOTHING`

// Decision records res, the decision on r: money movement at once, the
// rest through the writer.
func (l *Log) Decision(ctx context.Context, r *event.Record, res *risk.Result) error {
	q := newRow(r, res)
	if r.Type.MoneyMovement() {
		if err := l.now(ctx, &urgentWrite{row: &q}); err != nil {
			return fmt.Errorf("pipeline: recording the decision on %s: %w", r.ID, err)
		}
		return nil
	}
	l.mu.Lock()
	for len(l.pending) >= l.waitQueued && l.failed == nil {
		taken := l.taken
		l.mu.Unlock()
		select {
		case l.wake <- struct{}{}:
		default:
		}
		select {
		case <-taken:
		case <-ctx.Done():
			return fmt.Errorf("pipeline: waiting for the decision log: %w", ctx.Err())
		}
		l.mu.Lock()
	}
	if l.failed != nil {
		err := l.failed
		l.mu.Unlock()
		return fmt.Errorf("pipeline: decision log is failing: %w", err)
	}
	if len(l.pending) >= maxQueued {
		l.mu.Unlock()
		return errors.New("pipeline: decision log is backed up")
	}
	l.pending = append(l.pending, q)
	n := len(l.pending)
	l.mu.Unlock()
	if n == flushRows {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// newRow encodes res, the decision on r.
func newRow(r *event.Record, res *risk.Result) row {
	q := row{d: res.Decision, typ: r.Type, reasons: strings.Join(res.Decision.Reasons, " ")}
	q.d.Reasons = nil
	bp := encodeBufs.Get().(*[]byte)
	*bp = r.AppendJSON((*bp)[:0])
	q.record = string(*bp)
	*bp, q.fset = appendFeatureValues((*bp)[:0], res.Features)
	q.features = string(*bp)
	if res.Shadow != nil {
		*bp = res.Shadow.AppendJSON((*bp)[:0])
		q.shadow = string(*bp)
	}
	*bp = appendHits((*bp)[:0], res.Rules)
	q.rules = string(*bp)
	encodeBufs.Put(bp)
	return q
}

// appendHits appends the rules that fired as encoding/json would.
func appendHits(b []byte, hits []risk.Hit) []byte {
	if hits == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, h := range hits {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = event.AppendString(b, h.ID)
		b = append(b, `,"reason":`...)
		b = event.AppendString(b, h.Reason)
		if h.Weight != 0 {
			b = append(b, `,"weight":`...)
			b = strconv.AppendInt(b, int64(h.Weight), 10)
		}
		if h.Action != "" {
			b = append(b, `,"action":`...)
			b = event.AppendString(b, string(h.Action))
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// settle makes sure the row's feature set is in the database before the
// row names it, or, when another set holds its id there, turns the row's
// features back into the object. It stores the set in a statement of its
// own, never in the writer's transaction: a set stored by a transaction
// that rolled back would leave rows naming keys that are not there.
func (l *Log) settle(ctx context.Context, q *row) error {
	if q.fset == nil {
		return nil
	}
	l.setsMu.Lock()
	st, ok := l.sets[q.fset.id]
	l.setsMu.Unlock()
	if !ok {
		if _, err := l.db.ExecContext(ctx, `INSERT INTO feature_sets (id, keys) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, q.fset.id, q.fset.json); err != nil {
			return fmt.Errorf("pipeline: storing a feature set: %w", err)
		}
		var err error
		if st, err = l.storedSet(ctx, q.fset.id); err != nil {
			return err
		}
	}
	if st.json == q.fset.json {
		return nil
	}
	obj, err := featuresObject(q.fset.keys, q.features)
	if err != nil {
		return err
	}
	q.features, q.fset = obj, nil
	return nil
}

// storedSet reads the keys of feature set id from the database and keeps
// them.
func (l *Log) storedSet(ctx context.Context, id int64) (storedSet, error) {
	var st storedSet
	if err := l.db.QueryRowContext(ctx, `SELECT keys FROM feature_sets WHERE id = $1`, id).Scan(&st.json); err != nil {
		return st, fmt.Errorf("pipeline: feature set %d: %w", id, err)
	}
	if err := json.Unmarshal([]byte(st.json), &st.keys); err != nil {
		return st, fmt.Errorf("pipeline: feature set %d: %w", id, err)
	}
	l.setsMu.Lock()
	l.sets[id] = st
	l.setsMu.Unlock()
	return st, nil
}

// keysOf returns the keys of the stored feature set id.
func (l *Log) keysOf(ctx context.Context, id int64) ([]string, error) {
	l.setsMu.Lock()
	st, ok := l.sets[id]
	l.setsMu.Unlock()
	if ok {
		return st.keys, nil
	}
	st, err := l.storedSet(ctx, id)
	return st.keys, err
}

// encodeBufs hold rows being encoded.
var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// appendArgs appends the row's column values (decisionColumns) to args.
func (q *row) appendArgs(args []any) []any {
	d := &q.d
	var set int64
	if q.fset != nil {
		set = q.fset.id
	}
	return append(args, d.Event, store.Micros(d.Time), d.Account, string(q.typ), d.Action, d.Factor, int64(d.Score),
		q.reasons, d.Policy, q.rules, q.features, set, q.shadow, q.record)
}

// Run writes queued decisions every FlushEvery until ctx ends, then
// writes what is left.
func (l *Log) Run(ctx context.Context) {
	defer l.doneOnce.Do(func() { close(l.done) })
	l.running.Store(true)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.running.Store(false)
			l.Flush(context.Background())
			l.writing.Lock()
			for _, c := range []**sql.Conn{&l.conn, &l.dconn} {
				if *c != nil {
					(*c).Close()
					*c = nil
				}
			}
			l.writing.Unlock()
			return
		case <-l.wake:
		case <-t.C:
		}
		l.Flush(ctx)
	}
}

// Done is closed when Run has returned: its last flush is written and its
// connection closed, so the database may close.
func (l *Log) Done() <-chan struct{} { return l.done }

// Flush writes every queued decision now, in transactions of up to
// txRows rows, taking them from the queue one transaction at a time (so
// that a decision waiting for room in the queue waits for one transaction,
// not for all). The urgent writes go first, and cut a transaction of
// queued rows short when they come while it is written.
func (l *Log) Flush(ctx context.Context) error {
	l.writing.Lock()
	defer l.writing.Unlock()
	// The writes run to the end even if ctx ends meanwhile: a statement
	// cut short is work thrown away.
	wctx := context.WithoutCancel(ctx)
	for wrote := false; ; wrote = true {
		l.writeUrgent(wctx)
		l.mu.Lock()
		n := min(len(l.pending), txRows)
		batch := append(l.batch[:0], l.pending[:n]...)
		l.pending = append(l.pending[:0], l.pending[n:]...)
		close(l.taken)
		l.taken = make(chan struct{})
		failed := l.failed
		l.mu.Unlock()
		if n == 0 {
			if failed != nil && !wrote { // probe: clear the failure once the store answers
				if l.db.PingContext(ctx) != nil {
					return failed
				}
				l.log.Info("decision log recovered")
			}
			l.mu.Lock()
			l.failed = nil
			l.mu.Unlock()
			return nil
		}
		k, err := l.writeSome(wctx, batch, func() bool { return l.urgentN.Load() > 0 })
		if err == nil && k < n { // cut short: the rest back to the queue's head
			l.mu.Lock()
			l.pending = append(slices.Clone(batch[k:]), l.pending...)
			l.mu.Unlock()
			clear(batch)
			l.batch = batch
			continue
		}
		if err != nil {
			l.mu.Lock()
			l.failed = err
			l.pending = append(batch, l.pending...) // keep them for the next try
			l.batch = nil
			if len(l.pending) > maxQueued {
				l.pending = l.pending[:maxQueued]
			}
			l.log.Error("decision log failed; refusing decisions until it recovers", "err", err, "queued", len(l.pending))
			l.mu.Unlock()
			return err
		}
		clear(batch)
		l.batch = batch
		if n < txRows || ctx.Err() != nil {
			l.mu.Lock()
			l.failed = nil
			l.mu.Unlock()
			return nil
		}
	}
}

// write inserts rows in one transaction: in INSERTs of chunkRows rows and
// then of powers of two for the rest, each prepared once.
func (l *Log) write(ctx context.Context, rows []row) error {
	_, err := l.writeSome(ctx, rows, nil)
	return err
}

// writeSome is write that commits early, after the rows written so far,
// when stop (if not nil) says so between two INSERTs, and returns how many
// rows it wrote (all or none when it fails).
func (l *Log) writeSome(ctx context.Context, rows []row, stop func() bool) (int, error) {
	for i := range rows {
		if err := l.settle(ctx, &rows[i]); err != nil {
			return 0, err
		}
	}
	var written int
	args := make([]any, 0, chunkRows*decisionCols)
	insert := func(tx *sql.Tx) error {
		written = len(rows)
		for rest := rows; len(rest) > 0; {
			if stop != nil && len(rest) < len(rows) && stop() {
				written = len(rows) - len(rest)
				return nil
			}
			n := chunkRows
			for n > len(rest) {
				n /= 2
			}
			stmt, err := l.stmt(ctx, n)
			if err != nil {
				return err
			}
			args = args[:0]
			for i := range rest[:n] {
				args = rest[i].appendArgs(args)
			}
			if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...); err != nil {
				return err
			}
			clear(args)
			rest = rest[n:]
		}
		return nil
	}
	if l.db.Dialect != store.SQLite {
		if err := l.db.Tx(ctx, insert); err != nil {
			return 0, err
		}
		return written, nil
	}
	c, err := l.writerConn(ctx)
	if err != nil {
		return 0, err
	}
	if err := txOn(ctx, c, insert); err != nil {
		// Start again on a fresh connection: this one may be broken.
		l.conn.Close()
		l.conn = nil
		return 0, err
	}
	return written, nil
}

// txOn runs fn in a transaction on connection c: committed when fn
// succeeds, rolled back when it fails.
func txOn(ctx context.Context, c *sql.Conn, fn func(*sql.Tx) error) error {
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// writerConn returns the connection the writer keeps on SQLite: the
// store's pool for writes that need survive only a crash of the process
// (store.DB.FastWrites: synchronous=NORMAL, statement journals in memory),
// never a connection of the main pool, whose commits of money movement
// are durable against a power loss.
func (l *Log) writerConn(ctx context.Context) (*sql.Conn, error) {
	if l.conn != nil {
		return l.conn, nil
	}
	fast, err := l.db.FastWrites()
	if err != nil {
		return nil, err
	}
	c, err := fast.Conn(ctx)
	if err != nil {
		return nil, err
	}
	l.conn = c
	return c, nil
}

// stmt returns the prepared INSERT of n rows.
func (l *Log) stmt(ctx context.Context, n int) (*sql.Stmt, error) {
	if s, ok := l.stmts[n]; ok {
		return s, nil
	}
	// prepared on the pool the writer's transactions run on
	pool, err := l.db.FastWrites()
	if err != nil {
		return nil, err
	}
	s, err := pool.PrepareContext(ctx, multiInsert(l.db.Dialect, n))
	if err != nil {
		return nil, err
	}
	l.stmts[n] = s
	return s, nil
}

// Alert records a before it returns.
func (l *Log) Alert(ctx context.Context, a *event.Alert) error {
	return l.now(ctx, &urgentWrite{alert: a})
}

const upsertAlert = `INSERT INTO alerts (alert, time_us, kind, symbol, score, action, campaign, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (alert) DO UPDATE SET score = excluded.score, action = excluded.action, campaign = excluded.campaign, body = excluded.body`

// execer is a transaction or the database.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// exec writes u through e.
func (u *urgentWrite) exec(ctx context.Context, e execer) error {
	if a := u.alert; a != nil {
		_, err := e.ExecContext(ctx, upsertAlert, a.Alert, store.Micros(a.Time), a.Kind, a.Symbol, int64(a.Score), a.Action, a.Campaign, string(a.AppendJSON(nil)))
		return err
	}
	_, err := e.ExecContext(ctx, insertDecision, u.row.appendArgs(nil)...)
	return err
}

// now writes u before it returns: through the writer while Run runs,
// itself otherwise.
func (l *Log) now(ctx context.Context, u *urgentWrite) error {
	if !l.running.Load() {
		if u.row != nil {
			if err := l.settle(ctx, u.row); err != nil {
				return err
			}
		}
		return u.exec(ctx, l.db)
	}
	u.done = make(chan error, 1)
	l.mu.Lock()
	l.urgent = append(l.urgent, u)
	l.urgentN.Store(int32(len(l.urgent)))
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	select {
	case err := <-u.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("pipeline: waiting for the decision log: %w", ctx.Err())
	case <-l.done:
		select {
		case err := <-u.done:
			return err
		default:
			return errors.New("pipeline: the decision log's writer stopped")
		}
	}
}

// writeUrgent commits the urgent writes waiting, in one durable
// transaction (each alone when that fails, so that one bad write fails
// no other), and tells their callers. The writer's only; l.writing is
// held.
func (l *Log) writeUrgent(ctx context.Context) {
	if l.urgentN.Load() == 0 {
		return
	}
	l.mu.Lock()
	us := l.urgent
	l.urgent = nil
	l.urgentN.Store(0)
	l.mu.Unlock()
	if len(us) == 0 {
		return
	}
	if err := l.urgentTx(ctx, us); err == nil {
		for _, u := range us {
			u.done <- nil
		}
		return
	}
	for _, u := range us {
		u.done <- l.urgentTx(ctx, []*urgentWrite{u})
	}
}

// urgentTx writes us in one transaction of the main pool (on SQLite, the
// writer's connection of it: synchronous=FULL).
func (l *Log) urgentTx(ctx context.Context, us []*urgentWrite) error {
	for _, u := range us {
		if u.row != nil {
			if err := l.settle(ctx, u.row); err != nil {
				return err
			}
		}
	}
	fn := func(tx *sql.Tx) error {
		for _, u := range us {
			if err := u.exec(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	}
	if l.db.Dialect != store.SQLite {
		return l.db.Tx(ctx, fn)
	}
	if l.dconn == nil {
		c, err := l.db.Conn(ctx)
		if err != nil {
			return err
		}
		l.dconn = c
	}
	err := txOn(ctx, l.dconn, fn)
	if err != nil {
		l.dconn.Close() // start again on a fresh one: this one may be broken
		l.dconn = nil
	}
	return err
}

// Decisions returns stored decisions, newest first: of one account, or of
// one event, or all; at most limit.
func (l *Log) Decisions(ctx context.Context, account, eventID string, limit int) ([]guard.Explained, error) {
	q := `SELECT ` + decisionColumns + ` FROM decisions`
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
	var sets []int64 // each decision's feature set, resolved once the rows are read
	for rows.Next() {
		var s guard.Explained
		var us, score, set int64
		var reasons, rules, feats, shadow, rec string
		if err := rows.Scan(&s.Event, &us, &s.Account, &s.Type, &s.Action, &s.Factor, &score, &reasons, &s.Policy, &rules, &feats, &set, &shadow, &rec); err != nil {
			return nil, err
		}
		sets = append(sets, set)
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
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close() // before the queries of feature sets: they need a connection
	for i, set := range sets {
		if set == 0 {
			continue
		}
		keys, err := l.keysOf(ctx, set)
		if err != nil {
			return nil, err
		}
		obj, err := featuresObject(keys, string(out[i].Features))
		if err != nil {
			return nil, err
		}
		out[i].Features = json.RawMessage(obj)
	}
	return out, nil
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
