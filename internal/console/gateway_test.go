package console

import (
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

func TestGatewayWarning(t *testing.T) {
	now := time.Date(2025, 4, 15, 10, 0, 0, 0, time.UTC)
	since := now.Add(-24 * time.Hour)
	old := event.Alert{Alert: "a1", Kind: kindClientContext, Time: now.Add(-25 * time.Hour)}
	recent := event.Alert{Alert: "a2", Kind: kindClientContext, Time: now.Add(-time.Hour)}
	other := event.Alert{Alert: "a3", Kind: "cross_account_pump", Time: now}
	tests := []struct {
		name string
		as   []event.Alert
		want string
	}{
		{"none", nil, ""},
		{"other kinds only", []event.Alert{other}, ""},
		{"older than a day", []event.Alert{old, other}, ""},
		{"recent", []event.Alert{old, recent, other}, "a2"},
	}
	for _, tc := range tests {
		id := ""
		if got := gatewayWarning(tc.as, since); got != nil {
			id = got.Alert
		}
		if id != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, id, tc.want)
		}
	}
}
