package web

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kabuto-sec/kabuto/internal/notify"
)

// FuzzValidName: a display name sign-up accepts has no digit, dot, slash,
// colon or @ (so no link, host name, address or telephone number), at
// most 40 characters, and nothing in it that notify.Clean would take out.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"Sato Yui", "佐藤 結衣", "ヤマダ・タロウ", "O'Brien-Smith", "bit.ly/kbt kabuto.shop", "Call 0120-000-000", "a:b", "x@y", "www kabuto shop", "\u3000", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !validName(name) {
			return
		}
		if strings.ContainsAny(name, "0123456789./:@\\%?#&=") || utf8.RuneCountInString(name) > 40 || !utf8.ValidString(name) {
			t.Fatalf("accepted %q", name)
		}
		if notify.Clean(name) != strings.TrimSpace(name) {
			t.Fatalf("accepted %q, which Clean changes to %q", name, notify.Clean(name))
		}
	})
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{"Sato Yui": true, "佐藤　結衣": true, "ヤマダ・タロウ": true, "O'Brien-Smith": true,
		"bit.ly/kbt kabuto.shop": false, "Call 0120-000-000": false, "kabuto-support.example": false, "x:y": false, "": false,
		strings.Repeat("あ", 41): false} {
		if got := validName(name); got != want {
			t.Errorf("validName(%q) = %v, want %v", name, got, want)
		}
	}
}
