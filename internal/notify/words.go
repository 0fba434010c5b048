package notify

import (
	"fmt"
	"strconv"
)

// noticeWords holds the words notices use for the brokerage's codes, in
// Japanese and English: a customer never reads "sent" or "buy" in a
// Japanese message.
var noticeWords = map[string][2]string{
	"sent":     {"送金手続き済み", "sent to your bank"},
	"held":     {"確認中", "under review"},
	"rejected": {"お取り消し", "cancelled"},
	"buy":      {"買い", "buy"},
	"sell":     {"売り", "sell"},
	"email":    {"メールアドレス", "email address"},
	"phone":    {"電話番号", "phone number"},
	"address":  {"住所", "postal address"},
}

// Word returns the customer's word for code in locale ("ja" or "en"), or
// code itself when there is none.
func Word(code, locale string) string {
	w, ok := noticeWords[code]
	if !ok {
		return code
	}
	if locale == "en" {
		return w[1]
	}
	return w[0]
}

// Yen writes n yen with thousands separators: ¥1,234,567.
func Yen(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return sign + "¥" + string(out)
}

// OrderText describes an order for a notice: "7203 買い 100株" or
// "buy 100 shares of 7203".
func OrderText(symbol, side string, qty int64, locale string) string {
	if locale == "en" {
		return fmt.Sprintf("%s %d shares of %s", Word(side, locale), qty, symbol)
	}
	return fmt.Sprintf("%s %s %d株", symbol, Word(side, locale), qty)
}

// WithdrawalText describes a withdrawal to bank for a notice.
func WithdrawalText(bank, locale string) string {
	if locale == "en" {
		return "a withdrawal to " + bank
	}
	return bank + " への出金"
}
