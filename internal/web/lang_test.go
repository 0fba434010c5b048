package web

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
)

// TestLanguageKept: the language picked on one page holds on the next
// ones (sign-up, self-lock, unlock), over the browser's Accept-Language.
func TestLanguageKept(t *testing.T) {
	k := startKabuto(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(path, al string) string {
		t.Helper()
		rq, _ := http.NewRequest("GET", k.url+path, nil)
		rq.Header.Set("Accept-Language", al)
		rs, err := c.Do(rq)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Body.Close()
		b, _ := io.ReadAll(rs.Body)
		return string(b)
	}
	if b := get("/portal/signup", "ja"); !strings.Contains(b, "口座開設") {
		t.Fatal("sign-up in Japanese expected before a choice")
	}
	get("/portal/signup?lang=en", "ja")
	for _, path := range []string{"/portal/signup", "/portal/lock", "/portal/unlock", "/portal/signin"} {
		if b := get(path, "ja,en;q=0.5"); !strings.Contains(b, `<html lang="en">`) {
			t.Errorf("%s: the English picked on sign-up was not kept", path)
		}
	}
	get("/portal/lock?lang=ja", "en")
	if b := get("/portal/signup", "en-US"); !strings.Contains(b, `<html lang="ja">`) {
		t.Error("sign-up: the Japanese picked on self-lock was not kept")
	}
}
