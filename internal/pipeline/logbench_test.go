package pipeline

import (
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// rowSink keeps every decision as the row the log would write.
type rowSink struct{ rows []row }

func (s *rowSink) Decision(_ context.Context, r *event.Record, res *risk.Result) error {
	s.rows = append(s.rows, newRow(r, res))
	return nil
}
func (s *rowSink) Alert(context.Context, *event.Alert) error { return nil }

// decidedRows decides a generated stream of the given accounts and returns
// the decisions as rows.
func decidedRows(tb testing.TB, accounts, minutes int) []row {
	tb.Helper()
	sink := &rowSink{}
	p := NewPipeline(risk.NewEngine(nil), surveil.New(surveil.DefaultConfig()), sink)
	p.Explain = true
	rd := event.NewReader(bytes.NewReader(genStream(7, accounts, minutes, false)))
	for {
		var r event.Record
		if err := rd.NextInto(&r); err == io.EOF {
			break
		} else if err != nil {
			tb.Fatal(err)
		}
		var err error
		if r.Type.Action() {
			_, err = p.Decide(context.Background(), &r)
		} else {
			err = p.Observe(context.Background(), &r)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	return sink.rows
}

// BenchmarkLogWrite measures the decision log's writer on SQLite: the
// decisions of a generated stream (20,000 accounts) written in the groups
// the writer commits, each op one group. The baseline, in the same run,
// stores the feature values as the JSON object (as before feature sets),
// 100 decisions a commit (5 ms at 20,000 decisions/s); the others store
// the values alone, 100 a commit and then 100 and 400 a commit (20 ms at
// 5,000 and at 20,000 decisions/s). It reports the time and the database
// bytes (with the WAL) per decision.
func BenchmarkLogWrite(b *testing.B) {
	rows := decidedRows(b, 20000, 30)
	object := make([]row, len(rows))
	for i, q := range rows {
		obj, err := featuresObject(q.fset.keys, q.features)
		if err != nil {
			b.Fatal(err)
		}
		q.features, q.fset = obj, nil
		object[i] = q
	}
	for _, c := range []struct {
		name  string
		rows  []row
		group int
	}{{"baseline_object_100", object, 100}, {"compact_100", rows, 100}, {"compact_400", rows, 400}} {
		b.Run(c.name, func(b *testing.B) {
			db := storetest.SQLite(b)
			l := NewLog(db, nil)
			ctx := context.Background()
			batch := make([]row, c.group)
			i := 0
			for b.Loop() {
				for j := range batch {
					q := c.rows[i%len(c.rows)]
					if round := i / len(c.rows); round > 0 {
						q.d.Event += "/" + strconv.Itoa(round)
					}
					batch[j] = q
					i++
				}
				if err := l.write(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/decision")
			if st, err := os.Stat(db.Where); err == nil {
				size := st.Size()
				if wal, err := os.Stat(db.Where + "-wal"); err == nil {
					size += wal.Size()
				}
				b.ReportMetric(float64(size)/float64(i), "db-B/decision")
			}
		})
	}
}
