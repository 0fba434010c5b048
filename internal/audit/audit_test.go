package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

func TestChainAndTamper(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := New(db)
		now := time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST)
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				err := l.Append(ctx, Entry{Time: now.Add(time.Duration(i) * time.Second), Actor: "system:test", Action: "login_failed",
					Subject: fmt.Sprintf("C%03d", i%3), Detail: map[string]any{"ip": "192.0.2.1", "n": i}})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		n, err := l.Verify(ctx)
		if err != nil || n != 40 {
			t.Fatalf("verify: %d %v", n, err)
		}
		es, err := l.List(ctx, "C001", 100)
		if err != nil || len(es) != 13 {
			t.Fatalf("list: %d %v", len(es), err)
		}
		if err := l.Append(ctx, Entry{Action: "x"}); err == nil {
			t.Error("entry without actor accepted")
		}
		for _, tamper := range []struct{ sql, want string }{
			{`UPDATE audit SET detail = '{"ip":"198.51.100.1"}' WHERE seq = 7`, "entry 7 was altered"},
			{`DELETE FROM audit WHERE seq = 5`, "entry 5 is missing"},
		} {
			if _, err := db.ExecContext(ctx, tamper.sql); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Verify(ctx); err == nil || !strings.Contains(err.Error(), tamper.want) {
				t.Errorf("after %q: %v, want %q", tamper.sql, err, tamper.want)
			}
		}
	})
}
