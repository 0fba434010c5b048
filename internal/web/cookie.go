package web

import (
	"net/http"
	"time"

	"github.com/kabuto-sec/kabuto/internal/session"
)

// setCookie writes a session-style cookie: HttpOnly, SameSite=Lax, path /,
// named with the __Host- prefix under TLS (session.CookieName). A negative
// maxAge deletes it; zero makes it last as long as the browser.
func setCookie(w http.ResponseWriter, secure bool, base, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: session.CookieName(secure, base), Value: value, Path: "/", HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}
	if maxAge < 0 {
		c.MaxAge = -1
	} else if maxAge > 0 {
		c.MaxAge = int(maxAge.Seconds())
	}
	http.SetCookie(w, c)
}
