package server

import (
	"net/http"
	"strconv"
	"strings"
)

// lang returns the language of an API answer's words: "ja" when the
// request's Accept-Language prefers Japanese to English, else "en".
func lang(r *http.Request) string {
	return acceptLanguage(r.Header.Get("Accept-Language"))
}

// acceptLanguage picks "ja" or "en" from an Accept-Language value (RFC
// 9110 §12.5.4): the one of the two with the higher weight, the first
// listed on a tie, English when neither is named or the value is not
// understood.
func acceptLanguage(h string) string {
	best, bestQ := "en", -1.0
	for i, part := range strings.Split(h, ",") {
		if i >= 32 {
			break
		}
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if primary != "ja" && primary != "en" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || f < 0 || f > 1 {
					f = 0
				}
				q = f
			}
		}
		if q > 0 && q > bestQ {
			best, bestQ = primary, q
		}
	}
	return best
}
