package server

import (
	"net/http"
	"path"
	"strings"

	"github.com/kabuto-sec/kabuto/internal/reason"
)

// The server has two surfaces, each a mux with its own secure defaults.
//
// The API (isAPI: /api/…, /metrics, /healthz, /readyz) is for machines:
// API keys in Authorization, JSON in and out, every error (404 and 405
// included) as {"error": code, "message": text} from one writer
// (writeError); cookies are dropped before any handler sees the request,
// so no browser's ambient credentials ever act on it; nothing in it may be
// framed, rendered as a page or sent a referrer.
//
// The browser surface (everything else: the home page, the console, the
// portal) is for people: pages with a default Content-Security-Policy a
// page may narrow or replace, no framing, Referrer-Policy same-origin (so
// browsers send a real Origin with same-origin forms; no-referrer made
// Chromium send Origin: null), Cross-Origin-Opener- and -Resource-Policy
// same-origin, and no state-changing request a browser marks as
// cross-site (Sec-Fetch-Site). Pages keep their own CSRF tokens, origin
// checks and cookies (__Host-, Secure, HttpOnly, SameSite) on top.

// isAPI reports whether path belongs to the API surface.
func isAPI(path string) bool {
	return strings.HasPrefix(path, "/api/") || path == "/api" || path == "/metrics" || path == "/healthz" || path == "/readyz"
}

// apiDefaults serves mux as the API surface.
func apiDefaults(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		r.Header.Del("Cookie")
		handler, pattern := mux.Handler(r)
		if pattern != "" && cleanPath(r.URL.Path) == r.URL.Path {
			mux.ServeHTTP(w, r) // which sets the path's values
			return
		}
		// No route: the mux's own answer (404, 405, or a redirect to the
		// clean path), as a JSON error.
		c := &captured{header: http.Header{}}
		handler.ServeHTTP(c, r)
		switch c.code {
		case http.StatusNotFound:
			writeJSON(w, c.code, errorBody{Error: reason.NotFound, Message: "no such API path: see /api/v1/openapi.json"})
		case http.StatusMethodNotAllowed:
			h.Set("Allow", c.header.Get("Allow"))
			writeJSON(w, c.code, errorBody{Error: reason.BadRequest, Message: "method " + r.Method + " not allowed here; allowed: " + c.header.Get("Allow")})
		default:
			if loc := c.header.Get("Location"); loc != "" {
				h.Set("Location", loc)
			}
			writeJSON(w, c.code, errorBody{Error: reason.BadRequest, Message: "use the clean path " + c.header.Get("Location")})
		}
	})
}

// cleanPath is p as ServeMux wants it: cleaned, keeping a trailing slash.
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// captured records what a handler answered, without sending it.
type captured struct {
	header http.Header
	code   int
}

func (c *captured) Header() http.Header { return c.header }
func (c *captured) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}
func (c *captured) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return len(b), nil
}

// pageCSP is the Content-Security-Policy of a page that sets none.
const pageCSP = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// browserDefaults serves mux as the browser surface.
func browserDefaults(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
				http.Error(w, "cross-site request refused · 他のサイトからの送信は受け付けません", http.StatusForbidden)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}
