package pipeline

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
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
// the writer commits at 20,000 decisions/s (100 every 5 ms), each op one
// group. The baseline, in the same run, stores the feature values as the
// JSON object (as before feature sets); compact stores the values alone.
// It reports the time and the database bytes per decision.
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
		name string
		rows []row
	}{{"baseline_object", object}, {"compact", rows}} {
		b.Run(c.name, func(b *testing.B) {
			db := storetest.SQLite(b)
			l := NewLog(db, nil)
			ctx := context.Background()
			const group = 100
			batch := make([]row, group)
			i := 0
			for b.Loop() {
				for j := range batch {
					q := c.rows[i%len(c.rows)]
					if round := i / len(c.rows); round > 0 {
						q.d.Event += "/" + string(rune('a'+round))
					}
					batch[j] = q
					i++
				}
				if err := l.write(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/decision")
			if st, err := os.Stat(filepath.Join(filepath.Dir(db.Where), filepath.Base(db.Where))); err == nil {
				wal, _ := os.Stat(db.Where + "-wal")
				size := st.Size()
				if wal != nil {
					size += wal.Size()
				}
				b.ReportMetric(float64(size)/float64(i), "db-B/decision")
			}
		})
	}
}
