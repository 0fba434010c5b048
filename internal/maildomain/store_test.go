package maildomain_test

import (
	"context"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/maildomain"
	"github.com/kabuto-sec/kabuto/internal/maildomain/dnstest"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// TestMonitorKeepsTheLatest: the monitor stores each check; the console
// reads the latest per domain, so a fixed record shows as fixed.
func TestMonitorKeepsTheLatest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := dnstest.Start(t, map[string][]string{
			"kabuto.test":              {"v=spf1 ip4:192.0.2.1 -all"},
			"_dmarc.kabuto.test":       {"v=DMARC1; p=none"},
			"kabuto-login.test":        {"v=spf1 -all"},
			"_dmarc.kabuto-login.test": {"v=DMARC1; p=reject"},
		})
		now := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
		m := &maildomain.Monitor{DB: db, Sending: []string{"kabuto.test"}, NoMail: []string{"kabuto-login.test"},
			Checker: &maildomain.Checker{Resolver: maildomain.DNS{Server: srv.Addr}, Now: func() time.Time { return now }}}
		if _, err := m.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		srv.Set("_dmarc.kabuto.test", "v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:d@kabuto.test")
		now = now.Add(6 * time.Hour)
		if _, err := m.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		latest, err := maildomain.Latest(ctx, db)
		if err != nil || len(latest) != 2 {
			t.Fatalf("%d reports, %v", len(latest), err)
		}
		if latest[0].Domain != "kabuto-login.test" || latest[0].Sending || latest[1].Domain != "kabuto.test" || latest[1].DMARCPolicy != "reject" || !latest[1].Checked.Equal(now) {
			t.Fatalf("%+v", latest)
		}
	})
}
