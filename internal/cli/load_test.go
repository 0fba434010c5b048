package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/server"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// BenchmarkEventsAPI drives POST /api/v1/events of a real server over
// loopback with a load generator in the same process (so both share the 2
// cores): single-record requests and batches of 50 from 8 clients, and
// batches of 10 from 4 clients (an order gateway's shape). The
// baseline is GET /healthz under the same load in the same run. It reports
// decisions per second and p50/p99 request latency.
func BenchmarkEventsAPI(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := storetest.SQLite(b)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := newApp(ctx, db, log, appOptions{hours: market.Hours{Always: true}, seed: 1, smallCaps: 50})
	if err != nil {
		b.Fatal(err)
	}
	secret, _, err := a.keys.Create(ctx, "load", []string{apikey.ScopeEvents}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	// No request log lines: they would measure the terminal.
	go server.Serve(ctx, ln, a.server.Mux(), log)
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	t0 := time.Date(2025, 4, 8, 9, 0, 0, 0, time.FixedZone("JST", 9*3600))
	var seq atomic.Int64
	record := func() []byte {
		n := seq.Add(1)
		acct := fmt.Sprintf("L%05d", n%10000)
		r := event.Record{ID: fmt.Sprintf("ld%d", n), Time: t0.Add(time.Duration(n) * time.Millisecond), Account: acct, Session: "s" + acct,
			IP: "192.0.2.70", ASN: 2516, Country: "JP", Device: "d" + acct, UA: "Mozilla/5.0", Channel: "web"}
		if n%4 == 0 {
			r.Type, r.Method, r.Factors, r.OK = event.TypeLogin, "password", []string{"password", "email_otp"}, true
		} else {
			r.Type, r.OrderID, r.Symbol, r.Side, r.Qty, r.PriceType, r.AccountKind, r.ValueJPY = event.TypeOrder, fmt.Sprint("o", n), "7203", "buy", 100, "market", "cash", 270000
		}
		return r.AppendJSON(nil)
	}
	load := func(b *testing.B, method, path string, batch, clients int) {
		var mu sync.Mutex
		var lat []time.Duration
		var done atomic.Int64
		per := b.N/clients/batch + 1
		b.ResetTimer()
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				mine := make([]time.Duration, 0, per)
				for range per {
					var body []byte
					if method == "POST" {
						if batch == 1 {
							body = record()
						} else {
							parts := make([][]byte, batch)
							for i := range parts {
								parts[i] = record()
							}
							body = append(append([]byte{'['}, bytes.Join(parts, []byte{','})...), ']')
						}
					}
					req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+secret)
					req.Header.Set("Content-Type", "application/json")
					start := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					mine = append(mine, time.Since(start))
					done.Add(int64(batch))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
		}
		wg.Wait()
		if b.Failed() || len(lat) == 0 {
			return
		}
		el := b.Elapsed()
		slices.Sort(lat)
		b.ReportMetric(float64(done.Load())/el.Seconds(), "decisions/s")
		if method == "GET" {
			b.ReportMetric(float64(done.Load())/el.Seconds(), "requests/s")
		}
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	b.Run("baseline_healthz", func(b *testing.B) { load(b, "GET", "/healthz", 1, 8) })
	b.Run("single", func(b *testing.B) { load(b, "POST", "/api/v1/events", 1, 8) })
	b.Run("batch10_4clients", func(b *testing.B) { load(b, "POST", "/api/v1/events", 10, 4) })
	b.Run("batch20_2clients", func(b *testing.B) { load(b, "POST", "/api/v1/events", 20, 2) })
	b.Run("batch50", func(b *testing.B) { load(b, "POST", "/api/v1/events", 50, 8) })
}
