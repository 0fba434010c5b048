package identity

import (
	_ "embed"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kabuto-sec/kabuto/internal/reason"
)

//go:embed common.txt
var commonText string

var common = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(commonText, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			m[l] = true
		}
	}
	return m
}()

// MinPasswordLen and MaxPasswordLen bound a password, in characters
// (NIST SP 800-63B-4: at least 8 where it is one factor of several; we ask
// for more because a password is the first factor customers meet).
const (
	MinPasswordLen = 10
	MaxPasswordLen = 128
)

var unleet = strings.NewReplacer("0", "o", "1", "i", "3", "e", "4", "a", "5", "s", "7", "t", "@", "a", "$", "s", "!", "i")

// core reduces a password to what people actually chose: lower case,
// trailing digits and symbols dropped, letter-for-digit swaps undone.
func core(pw string) string {
	s := strings.ToLower(pw)
	s = strings.TrimRightFunc(s, func(r rune) bool {
		return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsSpace(r)
	})
	s = strings.TrimLeftFunc(s, func(r rune) bool { return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) })
	return unleet.Replace(s)
}

// CheckPassword refuses a password that is too short or long, common or
// breached-looking, made of one repeated or sequential run, or built on
// the account id or email address. The error says why, for the customer.
func CheckPassword(pw, account, email string) error {
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLen {
		return reason.E("invalid_field.password_short", "min", MinPasswordLen)
	}
	if n > MaxPasswordLen || !utf8.ValidString(pw) {
		return reason.E("invalid_field.password_long", "max", MaxPasswordLen)
	}
	lower := strings.ToLower(pw)
	c := core(pw)
	if common[lower] || common[c] || common[unleet.Replace(lower)] || len(c) < 4 && common[strings.TrimRight(lower, "0123456789")] {
		return reason.E("invalid_field.password_common")
	}
	// Common words with something short around them ("tokyo2025!", "myPassword").
	for w := range common {
		if len(w) >= 5 && strings.Contains(c, w) && len(c)-len(w) <= 3 {
			return reason.E("invalid_field.password_word")
		}
	}
	if repetitive(lower) {
		return reason.E("invalid_field.password_run")
	}
	if a := strings.ToLower(account); a != "" && strings.Contains(lower, a) {
		return reason.E("invalid_field.password_account")
	}
	if local, _, ok := strings.Cut(strings.ToLower(email), "@"); ok && len(local) >= 4 && strings.Contains(lower, local) {
		return reason.E("invalid_field.password_email")
	}
	return nil
}

// repetitive reports whether s is one character repeated, a short pattern
// repeated, or a run of consecutive characters ("abcdefghij", "9876543210").
func repetitive(s string) bool {
	r := []rune(s)
	for p := 1; p <= 3 && p < len(r); p++ {
		same := true
		for i := p; i < len(r); i++ {
			if r[i] != r[i-p] {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	up, down := true, true
	for i := 1; i < len(r); i++ {
		if r[i] != r[i-1]+1 {
			up = false
		}
		if r[i] != r[i-1]-1 {
			down = false
		}
	}
	return up || down
}
