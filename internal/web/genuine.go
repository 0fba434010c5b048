package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/kabuto-sec/kabuto/internal/identity"
	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/session"
)

// The "did we send this?" page: anyone, without signing in, types the
// reference code at the end of a message that claims to be from the firm
// and learns whether the firm sent a message with that code, and of what
// kind, by which channel and when: nothing about the account. Checks are
// limited per client address and per network, so the page cannot be used
// to enumerate codes (2^46 of them). Signed-in customers also get the message centre:
// every message sent to them with its code.

// Limits of code checks: ten per client address and forty per network
// go through at once, then each further check waits a minute, doubling up
// to an hour; ten quiet minutes forget the count. The counts are kept in
// the database (identity's throttle), so every process shares them.
var (
	genuinePerClient  = identity.Limit{Free: 10, Window: 10 * time.Minute, Backoff: time.Minute, MaxBackoff: time.Hour}
	genuinePerNetwork = identity.Limit{Free: 40, Window: 10 * time.Minute, Backoff: time.Minute, MaxBackoff: time.Hour}
)

var errGenuineLimit = reason.E("rate_limited.genuine")

// genuineAllowed counts one check by c against the limits.
func (p *Portal) genuineAllowed(r *http.Request, c session.Client) error {
	t := identity.NewThrottle(p.cfg.DB, p.cfg.Identity.Now)
	for _, k := range []struct {
		key string
		l   identity.Limit
	}{{"genuine:ip:" + c.IP, genuinePerClient}, {"genuine:net:" + c.Network, genuinePerNetwork}} {
		err := t.Take(r.Context(), k.key, k.l)
		var th *identity.Throttled
		if errors.As(err, &th) {
			return errGenuineLimit
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// registerGenuine adds the "did we send this?" page and the message
// centre to the portal's routes.
func (p *Portal) registerGenuine(h func(pattern string, fn handler)) {
	h("GET /portal/genuine", p.genuinePage)
	h("POST /portal/genuine", p.genuineCheck)
	h("GET /portal/messages", p.messageCentre)
}

func (p *Portal) genuinePage(w http.ResponseWriter, r *http.Request) error {
	p.render(w, r, "genuine", map[string]any{})
	return nil
}

// genuineCheck answers whether a code is genuine.
func (p *Portal) genuineCheck(w http.ResponseWriter, r *http.Request) error {
	rq := getReq(r)
	code := r.PostFormValue("code")
	data := map[string]any{"Code": code}
	if err := p.genuineAllowed(r, rq.client); err != nil {
		return err
	}
	info, err := notify.LookupRef(r.Context(), p.cfg.DB, code)
	switch {
	case errors.Is(err, notify.ErrUnknownRef):
		data["Genuine"] = false
	case err != nil:
		return err
	default:
		data["Genuine"] = true
		data["Ref"] = notify.NormalizeRef(code)
		data["Kind"] = notify.KindText(info.Kind, rq.lang)
		data["Channel"] = notify.ChannelText(info.Channel, rq.lang)
		data["Sent"] = info.Created
	}
	data["Checked"] = true
	p.render(w, r, "genuine", data)
	return nil
}

// messageCentre lists the signed-in customer's messages of every channel
// with their reference codes.
func (p *Portal) messageCentre(w http.ResponseWriter, r *http.Request) error {
	rq := getReq(r)
	if rq.sess == nil {
		http.Redirect(w, r, "/portal/signin", http.StatusSeeOther)
		return nil
	}
	list, err := notify.AccountMessages(r.Context(), p.cfg.DB, rq.sess.Account, 200)
	if err != nil {
		return err
	}
	type row struct {
		notify.Listed
		ChannelText string
	}
	rows := make([]row, len(list))
	for i, l := range list {
		rows[i] = row{l, notify.ChannelText(l.Channel, rq.lang)}
	}
	p.render(w, r, "messages", map[string]any{"Messages": rows})
	return nil
}
