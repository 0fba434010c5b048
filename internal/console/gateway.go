package console

import (
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// kindClientContext is the watchtower's alert that many accounts act from
// one address with no client context (surveil.KindClientContext).
const kindClientContext = "client_context_missing"

// gatewayWarning returns the latest client_context_missing alert among as
// raised since since, or nil: the home page then warns that the
// brokerage's gateway calls without its customers' context.
func gatewayWarning(as []event.Alert, since time.Time) *event.Alert {
	var last *event.Alert
	for i := range as {
		if a := &as[i]; a.Kind == kindClientContext && !a.Time.Before(since) && (last == nil || a.Time.After(last.Time)) {
			last = a
		}
	}
	return last
}
