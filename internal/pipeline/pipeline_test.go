package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

func replay(t testing.TB, stream []byte) (decisions, alerts []byte, sum *Summary) {
	t.Helper()
	var d, a bytes.Buffer
	sink := &StreamSink{Decisions: bufio.NewWriter(&d), Alerts: bufio.NewWriter(&a)}
	p := NewPipeline(risk.NewEngine(risk.BuiltinPolicy()), surveil.New(surveil.DefaultConfig()), nil)
	sum, err := Replay(context.Background(), bytes.NewReader(stream), p, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d.Bytes(), a.Bytes(), sum
}

// TestReplayDeterministic replays the same stream twice, byte for byte.
func TestReplayDeterministic(t *testing.T) {
	stream := genStream(1, 2000, 60, true)
	d1, a1, sum := replay(t, stream)
	d2, a2, _ := replay(t, stream)
	if !bytes.Equal(d1, d2) || !bytes.Equal(a1, a2) {
		t.Fatal("replay is not deterministic")
	}
	if sum.Actions == 0 || bytes.Count(d1, []byte{'\n'}) != sum.Actions {
		t.Fatalf("%d actions, %d decisions written", sum.Actions, bytes.Count(d1, []byte{'\n'}))
	}
	var out strings.Builder
	sum.Format(&out)
	t.Log("\n" + out.String())
}

// TestHaltAppliesToLaterRecords checks the spec's semantics: once an alert
// halts buying of a symbol, every later buy of it in the stream is refused
// with instrument_halted.
func TestHaltAppliesToLaterRecords(t *testing.T) {
	d, a, sum := replay(t, genStream(2, 2000, 60, true))
	if len(sum.Halts) == 0 {
		t.Fatalf("the ramp was not halted; alerts:\n%s", a)
	}
	halted := 0
	for _, line := range bytes.Split(bytes.TrimSpace(d), []byte{'\n'}) {
		if bytes.Contains(line, []byte(`"instrument_halted"`)) {
			halted++
			if !bytes.Contains(line, []byte(`"action":"deny"`)) {
				t.Errorf("halted buy not denied: %s", line)
			}
		}
	}
	if halted == 0 {
		t.Errorf("no buy after the halt was refused; halts %v", sum.Halts)
	}
}

func TestReplayErrorsNameTheLine(t *testing.T) {
	stream := genStream(3, 50, 2, false)
	lines := bytes.Split(stream, []byte{'\n'})
	lines[120] = []byte(`{"id":"bad","type":"order","time":"2025-04-08T09:01:00+09:00","account":"A1","order_id":"o","symbol":"7000","side":"buy","qty":"many","price_type":"market","account_kind":"cash"}`)
	p := NewPipeline(risk.NewEngine(nil), surveil.New(surveil.DefaultConfig()), nil)
	_, err := Replay(context.Background(), bytes.NewReader(bytes.Join(lines, []byte{'\n'})), p, &StreamSink{}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "line 121: field qty") {
		t.Fatalf("got %v", err)
	}
}

// TestLogFailsClosed checks that a decision on money movement is refused
// when it cannot be stored, and that decisions are kept with their
// explanation.
func TestLogFailsClosed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := NewLog(db, nil)
		p := NewPipeline(risk.NewEngine(nil), surveil.New(surveil.DefaultConfig()), l)
		p.Explain = true
		stream := genStream(4, 200, 20, false)
		rd := event.NewReader(bytes.NewReader(stream))
		var wd *event.Record
		for {
			r, err := rd.Next()
			if err != nil {
				break
			}
			if r.Type.Action() {
				if _, err := p.Decide(ctx, r); err != nil {
					t.Fatal(err)
				}
				if r.Type == event.TypeWithdrawal && wd == nil {
					wd = r
				}
			} else if err := p.Observe(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if wd == nil {
			t.Fatal("stream had no withdrawal")
		}
		ds, err := l.Decisions(ctx, "", wd.ID, 1)
		if err != nil || len(ds) != 1 || ds[0].Type != "withdrawal" || len(ds[0].Features) < 10 || len(ds[0].Record) < 10 {
			t.Fatalf("stored decision: %+v %v", ds, err)
		}
		// The explanation survives encoding for the API.
		js, _ := json.Marshal(ds[0])
		for _, k := range []string{`"features":{`, `"rules":`, `"record":{`, `"action":`, `"reasons":[`} {
			if !bytes.Contains(js, []byte(k)) {
				t.Errorf("encoded decision lacks %s: %s", k, js)
			}
		}
		db.Close() // the store goes down
		w2 := *wd
		w2.ID = "after-close"
		if _, err := p.Decide(ctx, &w2); err == nil {
			t.Fatal("a withdrawal was decided with the store down")
		}
		o := &event.Record{ID: "o-after", Type: event.TypeOrder, Time: wd.Time, Account: wd.Account, OrderID: "x", Symbol: "7000", Side: "buy", Qty: 100, PriceType: "market", AccountKind: "cash"}
		p.Decide(ctx, o)
		if err := l.Flush(ctx); err == nil {
			t.Fatal("flush succeeded with the store down")
		}
		o.ID = "o-after-2"
		if _, err := p.Decide(ctx, o); err == nil || !strings.Contains(err.Error(), "failing") {
			t.Fatalf("decisions go on unrecorded: %v", err)
		}
	})
}

// TestLogBackPressure checks that decisions coming faster than the
// writer takes them wait for it instead of being refused, and that every
// one is stored, with its explanation, once the writer stops.
func TestLogBackPressure(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		l := NewLog(db, nil)
		l.waitQueued = 16
		done := make(chan struct{})
		go func() { l.Run(ctx); close(done) }()
		p := NewPipeline(risk.NewEngine(nil), surveil.New(surveil.DefaultConfig()), l)
		p.Explain = true
		at := time.Date(2025, 4, 8, 9, 0, 0, 0, jst)
		const workers, each = 4, 300
		errs := make(chan error, workers)
		for w := range workers {
			go func() {
				for i := range each {
					acct := fmt.Sprintf("B%d-%d", w, i%20)
					r := &event.Record{ID: fmt.Sprintf("bp-%d-%d", w, i), Type: event.TypeOrder, Time: at.Add(time.Duration(i) * time.Second), Account: acct,
						Session: "s" + acct, IP: "192.0.2.70", ASN: 2516, Country: "JP", Device: "d" + acct, UA: "ua", Channel: "web",
						OrderID: fmt.Sprint("o", i), Symbol: "7203", Side: "buy", Qty: 100, PriceType: "market", AccountKind: "cash", ValueJPY: 270000}
					if _, err := p.Decide(ctx, r); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for range workers {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		<-done
		var n int
		if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM decisions WHERE event LIKE 'bp-%' AND feature_set <> 0 AND features LIKE '[%'`).Scan(&n); err != nil || n != workers*each {
			t.Fatalf("%d decisions stored with their features, want %d (%v)", n, workers*each, err)
		}
	})
}

func TestNotAction(t *testing.T) {
	p := NewPipeline(risk.NewEngine(nil), surveil.New(surveil.DefaultConfig()), &StreamSink{summary: newSummary()})
	if _, err := p.Decide(context.Background(), &event.Record{Type: event.TypeBar}); !errors.Is(err, ErrNotAction) {
		t.Fatal(err)
	}
}

// BenchmarkReplay measures replay (decode, decide, watch, encode) against
// parsing the same stream alone, in the same run: with Kabuto's decoder,
// and with encoding/json alone.
func BenchmarkReplay(b *testing.B) {
	stream := genStream(5, 20000, 30, true)
	n := bytes.Count(stream, []byte{'\n'})
	b.Run("parse_only", func(b *testing.B) {
		b.SetBytes(int64(len(stream)))
		for b.Loop() {
			if _, err := ParseOnly(bytes.NewReader(stream)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	// The same pass with encoding/json as the decoder (what parsing cost
	// before the decoder's fast path), for comparison.
	b.Run("parse_only_encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(stream)))
		for b.Loop() {
			sc := bufio.NewScanner(bytes.NewReader(stream))
			sc.Buffer(nil, event.MaxLine)
			for sc.Scan() {
				var r event.Record
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					b.Fatal(err)
				}
				if err := r.Validate(); err != nil && !event.IsUnknownType(err) {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("replay", func(b *testing.B) {
		b.SetBytes(int64(len(stream)))
		for b.Loop() {
			var d, a bytes.Buffer
			p := NewPipeline(risk.NewEngine(nil), surveil.New(surveil.DefaultConfig()), nil)
			if _, err := Replay(context.Background(), bytes.NewReader(stream), p, &StreamSink{Decisions: bufio.NewWriter(&d), Alerts: bufio.NewWriter(&a)}, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

// TestProceedsHeld checks that an account whose proceeds surveillance holds
// (a hijacked account that liquidated into a ramp, or the ring's seller)
// cannot take them out: its withdrawal goes to an analyst.
func TestProceedsHeld(t *testing.T) {
	const accounts = 2000
	stream := genStream(2, accounts, 60, true)
	// Freezing off, so the hold on proceeds is what stops the withdrawal.
	cfg := surveil.DefaultConfig()
	cfg.FreezeScore = 0
	p := NewPipeline(risk.NewEngine(nil), surveil.New(cfg), nil)
	sink := &StreamSink{}
	if _, err := Replay(context.Background(), bytes.NewReader(stream), p, sink, nil); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 4, 8, 10, 1, 0, 0, jst)
	var held, ordinary string
	for i := range accounts {
		a := fmt.Sprintf("A%06d", i)
		if p.Watch.HeldProceeds(a, at) > 0 {
			held = a
		} else if ordinary == "" {
			ordinary = a
		}
	}
	if held == "" {
		t.Fatal("surveillance held no proceeds after the ramp")
	}
	decide := func(acct string) event.Decision {
		w := &event.Record{ID: "w-" + acct, Type: event.TypeWithdrawal, Time: at, Account: acct, Session: "s" + acct[len(acct)-4:],
			IP: "192.0.2.70", ASN: 2516, Country: "JP", Device: "d-late", UA: "Mozilla/5.0", Channel: "web", AmountJPY: 10000, BankHash: "b" + acct}
		d, err := p.Decide(context.Background(), w)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := decide(held); d.Action != event.Hold || !slices.Contains(d.Reasons, ReasonProceedsHeld) {
		t.Errorf("withdrawal from %s with held proceeds: %+v", held, d)
	}
	if d := decide(ordinary); slices.Contains(d.Reasons, ReasonProceedsHeld) {
		t.Errorf("ordinary customer's proceeds held: %+v", d)
	}
}
