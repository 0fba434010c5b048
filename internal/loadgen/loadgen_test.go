package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// fakeServer answers POST /api/v1/events with an allow for every action
// of a valid batch, as Kabuto does, and counts what it got.
func fakeServer(t *testing.T, decisions func(n int) int) (*httptest.Server, *atomic.Int64) {
	var records atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer kb_test_key_1234" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"unauthenticated","message":"the API key is not valid"}`))
			return
		}
		var raw []json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			t.Errorf("body: %v", err)
		}
		var out bytes.Buffer
		out.WriteString(`{"decisions":[`)
		acts := 0
		for _, b := range raw {
			rec, err := event.Decode(b)
			if err != nil {
				t.Errorf("record: %v: %s", err, b)
				continue
			}
			if rec.Type.Action() {
				acts++
			}
		}
		records.Add(int64(len(raw)))
		for i := range decisions(acts) {
			if i > 0 {
				out.WriteByte(',')
			}
			out.WriteString(`{"event":"e","action":"allow"}`)
		}
		out.WriteString(`]}`)
		w.Write(out.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv, &records
}

func TestRunCountsAndPaces(t *testing.T) {
	srv, records := fakeServer(t, func(n int) int { return n })
	const n, batch, rate = 20, 3, 3000.0 // a request due every millisecond
	start := time.Now()
	res, err := Run(context.Background(), Config{Target: srv.URL, Key: "kb_test_key_1234", Batch: batch, Clients: 2, Requests: n, Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != n || res.Decisions != n*batch || res.Actions[event.Allow] != n*batch || res.P50 <= 0 || res.Max < res.P999 || res.P999 < res.P99 || res.P99 < res.P50 {
		t.Fatalf("result: %+v", res)
	}
	// The instruments first, then the batches; none sent before its time.
	if got := records.Load(); got != int64(len(symbols)+n*batch) {
		t.Errorf("server got %d records, want %d", got, len(symbols)+n*batch)
	}
	if el, least := time.Since(start), time.Duration(n-1)*time.Second*batch/rate; el < least {
		t.Errorf("%d requests at %v decisions/s took %v, less than %v", n, rate, el, least)
	}
}

func TestRunErrors(t *testing.T) {
	srv, _ := fakeServer(t, func(n int) int { return n - 1 })
	_, err := Run(context.Background(), Config{Target: srv.URL, Key: "kb_wrong", Batch: 2, Clients: 1, Requests: 3})
	var se *StatusError
	if !errors.As(err, &se) || !se.Unauthorized() || se.Code != "unauthenticated" || se.Message != "the API key is not valid" {
		t.Fatalf("wrong key: %v", err)
	}
	good := srv.URL + "/"
	if _, err := Run(context.Background(), Config{Target: good, Key: "kb_test_key_1234", Batch: 4, Clients: 1, Requests: 3}); err == nil || !strings.Contains(err.Error(), "answered 3 decisions to a batch of 4") {
		t.Fatalf("missing decisions: %v", err)
	}
	for _, c := range []Config{
		{Key: "k", Batch: 1, Clients: 1, Requests: 1},
		{Target: "localhost", Key: "k", Batch: 1, Clients: 1, Requests: 1},
		{Target: good, Batch: 1, Clients: 1, Requests: 1},
		{Target: good, Key: "k", Batch: 0, Clients: 1, Requests: 1},
		{Target: good, Key: "k", Batch: 1, Clients: 0, Requests: 1},
		{Target: good, Key: "k", Batch: 1, Clients: 1},
		{Target: good, Key: "k", Batch: 1, Clients: 1, Requests: 1, Rate: -1},
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestQuantile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}} {
		if got := quantile(d, c.q); got != c.want {
			t.Errorf("q%v = %v, want %v", c.q, got, c.want)
		}
	}
	if got := quantile([]time.Duration{7}, 0.99); got != 7 {
		t.Errorf("one value: %v", got)
	}
}
