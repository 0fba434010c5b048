package console

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/store"
)

// sameOrigin reports whether a state-changing request comes from the
// console's own pages. A browser that says where the request comes from
// (Sec-Fetch-Site) must say same-origin; an Origin header, when sent,
// must be exactly this server's origin ("null", which browsers send for
// opaque origins, is refused). A client that sends neither is no browser
// and carries no cookies of a victim, so it is let through to the next
// checks (the CSRF token, the key).
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin":
	default: // cross-site, same-site, none
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host != r.Host || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return false
	}
	// Behind a proxy that ends TLS the browser's origin is https while
	// this server sees plain HTTP.
	return u.Scheme == "https" || (u.Scheme == "http" && r.TLS == nil)
}

// safeNext returns next when it is a path of the console on this origin,
// and "/console" otherwise: only /console or /console/… made of path
// characters, no "//", "\", "..", controls, query or fragment, so no
// browser can read it as another host (//evil, /\evil, /\t/evil).
func safeNext(next string) string {
	const home = "/console"
	if next != home && !strings.HasPrefix(next, home+"/") {
		return home
	}
	for i := 0; i < len(next); i++ {
		c := next[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '-' || c == '_' || c == '.' || c == '~' || c == '%'
		if !ok {
			return home
		}
	}
	if strings.Contains(next, "//") || strings.Contains(next, "/../") || strings.HasSuffix(next, "/..") || strings.Contains(strings.ToLower(next), "%2f") || strings.Contains(strings.ToLower(next), "%5c") || strings.Contains(strings.ToLower(next), "%2e") {
		return home
	}
	if _, err := url.PathUnescape(next); err != nil {
		return home
	}
	return next
}

// clientOf names the client of r for the sign-in throttle: its IP
// address, or its /64 for IPv6 (one household or host holds a /64).
// Forwarded headers are not trusted.
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// The sign-in throttle: after freeFailures failed sign-ins in a window a
// client waits, doubling from one second up to maxWait, before a key is
// checked again. Failures are audited in aggregate: an entry at the 1st,
// 2nd, 4th, 8th… failure of a client in its window, carrying the count,
// and none of a client's while all clients together have failed more
// than loudFailures times in the last minute (then the entry is the
// count of all, at the same powers of two).
const (
	freeFailures = 5
	maxWait      = 15 * time.Minute
	window       = time.Hour
	loudWindow   = time.Minute
	loudFailures = 20
	allClients   = "*"
)

// throttled returns how long client must still wait.
func (c *Console) throttled(ctx context.Context, client string) (time.Duration, error) {
	if c.cfg.DB == nil {
		return 0, nil
	}
	var blocked int64
	err := c.cfg.DB.QueryRowContext(ctx, `SELECT blocked_us FROM console_login_throttle WHERE client = $1`, client).Scan(&blocked)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return max(0, store.FromMicros(blocked).Sub(c.cfg.Now())), nil
}

// count adds one failure of client in a window of length win and returns
// the failures in the window, itself included.
func (c *Console) count(ctx context.Context, client string, win time.Duration) (int64, error) {
	now := c.cfg.Now()
	var n int64
	err := c.cfg.DB.QueryRowContext(ctx, `INSERT INTO console_login_throttle (client, failures, window_us, blocked_us) VALUES ($1, 1, $2, 0)
		ON CONFLICT (client) DO UPDATE SET
			failures = CASE WHEN console_login_throttle.window_us < $3 THEN 1 ELSE console_login_throttle.failures + 1 END,
			window_us = CASE WHEN console_login_throttle.window_us < $3 THEN $2 ELSE console_login_throttle.window_us END
		RETURNING failures`, client, store.Micros(now), store.Micros(now.Add(-win))).Scan(&n)
	return n, err
}

// failed counts a failed sign-in of client, sets its wait, and audits it
// in aggregate.
func (c *Console) failed(ctx context.Context, client string) error {
	if c.cfg.DB == nil {
		c.audit(ctx, "analyst:unknown", "console_login_failed", "", map[string]any{"ip": client})
		return nil
	}
	now := c.cfg.Now()
	n, err := c.count(ctx, client, window)
	if err != nil {
		return err
	}
	if n >= freeFailures {
		wait := min(maxWait, time.Second<<min(n-freeFailures, 20))
		if _, err := c.cfg.DB.ExecContext(ctx, `UPDATE console_login_throttle SET blocked_us = $1 WHERE client = $2 AND blocked_us < $1`,
			store.Micros(now.Add(wait)), client); err != nil {
			return err
		}
	}
	all, err := c.count(ctx, allClients, loudWindow)
	if err != nil {
		return err
	}
	if _, err := c.cfg.DB.ExecContext(ctx, `DELETE FROM console_login_throttle WHERE window_us < $1 AND blocked_us < $2`,
		store.Micros(now.Add(-24*time.Hour)), store.Micros(now)); err != nil {
		return err
	}
	switch {
	case all > loudFailures:
		if pow2(all) {
			c.audit(ctx, "analyst:unknown", "console_login_failed", "", map[string]any{"clients": "all", "failures_last_minute": all})
		}
	case pow2(n):
		c.audit(ctx, "analyst:unknown", "console_login_failed", "", map[string]any{"ip": client, "failures": n, "window": window.String()})
	}
	return nil
}

func pow2(n int64) bool { return n > 0 && n&(n-1) == 0 }
