package pipeline

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/streamgen"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// countSink counts what reaches it.
type countSink struct {
	decisions, alerts int
	reasons           map[string]int
}

func (s *countSink) Decision(_ context.Context, _ *event.Record, res *risk.Result) error {
	s.decisions++
	for _, r := range res.Decision.Reasons {
		s.reasons[r]++
	}
	return nil
}

func (s *countSink) Alert(context.Context, *event.Alert) error { s.alerts++; return nil }

func newCountPipeline() (*Pipeline, *countSink) {
	s := &countSink{reasons: map[string]int{}}
	return NewPipeline(risk.NewEngine(risk.BuiltinPolicy()), surveil.New(surveil.DefaultConfig()), s), s
}

// history returns a generated history of ordinary customers (5 days) and
// its attack day (no attack, look-alikes only).
func history(t *testing.T) (hist, day []byte) {
	t.Helper()
	var h, d bytes.Buffer
	_, err := streamgen.Generate(context.Background(), streamgen.Config{Seed: 4, Customers: 250, Days: 5, Families: []streamgen.Family{}},
		streamgen.Outputs{Stream: &d, History: &h}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h.Bytes(), d.Bytes()
}

// TestLearnActsOnNothing: learning decides nothing for keeps, raises no
// alert and leaves no halt or freeze, in the engine or the watchtower,
// even where the history raised findings; and it learns the profiles a
// replay of the same history builds.
func TestLearnActsOnNothing(t *testing.T) {
	hist, day := history(t)
	p, sink := newCountPipeline()
	var alerted int
	p.OnAlert = func(context.Context, event.Alert) { alerted++ }
	sum, err := Learn(context.Background(), bytes.NewReader(hist), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sink.decisions != 0 || sink.alerts != 0 || alerted != 0 {
		t.Fatalf("learning wrote %d decisions, %d alerts, told %d alerts", sink.decisions, sink.alerts, alerted)
	}
	if sum.Actions == 0 || sum.Records < sum.Actions {
		t.Fatalf("learnt %+v", sum)
	}
	if sum.Findings == 0 {
		t.Fatal("the history raised no finding: the test shows nothing about dropping them")
	}
	// It learnt the profiles a replay of the same history builds.
	replayed, _ := newCountPipeline()
	if _, err := Replay(context.Background(), bytes.NewReader(hist), replayed, &StreamSink{}, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := p.Risk.Accounts(), replayed.Risk.Accounts(); got == 0 || got != want {
		t.Errorf("learnt %d accounts' profiles, a replay of the history builds %d", got, want)
	}
	// No symbol or account is halted or frozen after learning.
	syms, accts := map[string]bool{}, map[string]bool{}
	rd := event.NewReader(bytes.NewReader(hist))
	for {
		r, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Type == event.TypeInstrument {
			syms[r.Symbol] = true
		}
		if r.Type == event.TypeAccount {
			accts[r.Account] = true
		}
	}
	last := sum.To
	for s := range syms {
		if p.Watch.Halted(s) {
			t.Errorf("%s halted after learning", s)
		}
		var res risk.Result
		p.Risk.DecideInto(&event.Record{ID: "probe", Type: event.TypeOrder, Time: last, Account: "probe-account", Symbol: s, Side: event.SideBuy,
			Qty: 100, PriceType: event.PriceMarket, AccountKind: event.KindCash, ValueJPY: 10000, OrderID: "o"}, &res, false)
		if slices.Contains(res.Decision.Reasons, "instrument_halted") {
			t.Errorf("%s: buying refused as halted after learning", s)
		}
	}
	for a := range accts {
		if p.Watch.Frozen(a) {
			t.Errorf("%s frozen after learning", a)
		}
	}
	// The day after: a device seen in the history is not new.
	if _, err := Replay(context.Background(), bytes.NewReader(day), p, &StreamSink{}, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("learnt %d records (%d findings dropped), %d accounts; the day after: %v", sum.Records, sum.Findings, p.Risk.Accounts(), p.Sink.(*StreamSink).summary.ByReason)
}

// TestLearnBadRecord: a bad record stops learning with an error naming
// its line and field.
func TestLearnBadRecord(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"id":"1","type":"instrument","time":"2025-04-21T07:00:00+09:00","symbol":"7203","market":"TSE_PRIME","currency":"JPY","price":2700,"price_jpy":2700,"adv_shares":1,"lot":100}` + "\n" +
			`{"id":"2","type":"order","time":"2025-04-21T09:00:00+09:00","account":"a","order_id":"o","symbol":"7203","side":"hold","qty":100,"price_type":"market","account_kind":"cash"}`,
			"line 2: field side"},
		{`{"id":"1","type":"login","time":"2025-04-21T09:00:00+09:00","account":"a","method":"password","ok":true}` + "\n" +
			`{"id":"2","type":"login","time":"2025-04-20T09:00:00+09:00","account":"a","method":"password","ok":true}`,
			"line 2: field time"},
		{"\n", "line 1: blank line"},
	} {
		p, sink := newCountPipeline()
		_, err := Learn(context.Background(), strings.NewReader(tt.in), p, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want %q", err, tt.want)
		}
		if sink.decisions != 0 {
			t.Errorf("%d decisions written", sink.decisions)
		}
	}
}

// TestLearnRefusesClusterNode: a cluster node learns from the cluster's
// stream, not from a file.
func TestLearnRefusesClusterNode(t *testing.T) {
	p, _ := newCountPipeline()
	p.Cluster = nopCluster{}
	if _, err := Learn(context.Background(), strings.NewReader(""), p, nil); !errors.Is(err, ErrLearnCluster) {
		t.Fatalf("error %v, want ErrLearnCluster", err)
	}
}

type nopCluster struct{}

func (nopCluster) Decide(context.Context, *event.Record) (event.Decision, error) {
	return event.Decision{}, nil
}
func (nopCluster) Observe(context.Context, *event.Record) error { return nil }
func (nopCluster) DecideBatch(context.Context, []*event.Record) ([]event.Decision, error) {
	return nil, nil
}
func (nopCluster) SetHalt(string, bool)   {}
func (nopCluster) SetFrozen(string, bool) {}
