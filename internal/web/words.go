package web

import (
	"strconv"
	"strings"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/identity"
	"github.com/kabuto-sec/kabuto/internal/market"
)

// words holds the customer's words for the codes the brokerage and the
// identity service store, in Japanese and English. A code with no entry
// is shown as a neutral word, never as itself.
var words = map[string]map[string][2]string{
	"kind": {
		event.KindCash:   {"特定・一般口座（現物）", "Cash account"},
		event.KindNISA:   {"NISA（成長投資枠）", "NISA (growth quota)"},
		event.KindMargin: {"信用取引", "Margin"},
	},
	"market": {
		market.TSEPrime:    {"東証プライム", "TSE Prime"},
		market.TSEStandard: {"東証スタンダード", "TSE Standard"},
		market.TSEGrowth:   {"東証グロース", "TSE Growth"},
		market.HK:          {"香港", "Hong Kong"},
		market.SH:          {"上海", "Shanghai"},
		market.SZ:          {"深セン", "Shenzhen"},
		market.US:          {"米国", "US"},
	},
	"side": {
		"buy":  {"買い", "Buy"},
		"sell": {"売り", "Sell"},
	},
	"price": {
		event.PriceMarket: {"成行", "Market"},
		event.PriceLimit:  {"指値", "Limit"},
	},
	"status": {
		"open":      {"受付済み", "Accepted"},
		"filled":    {"約定済み", "Filled"},
		"cancelled": {"取消済み", "Cancelled"},
		"held":      {"確認中", "Under review"},
		"rejected":  {"不成立", "Rejected"},
		"sent":      {"送信済み", "Sent"},
		"pending":   {"送信待ち", "Waiting to send"},
		"failed":    {"送信できませんでした", "Could not be sent"},
	},
	"outcome": {
		"throttled":             {"試行回数の制限", "too many attempts"},
		"locked":                {"ロック中", "locked"},
		"unknown_account":       {"口座番号の誤り", "unknown account number"},
		"wrong_password_locked": {"パスワードの誤り（ロック）", "wrong password, now locked"},
		"wrong_password":        {"パスワードの誤り", "wrong password"},
		"guard_unavailable":     {"安全確認ができず", "safety check unavailable"},
		"self_locked":           {"お客様のロック中", "locked at your request"},
		"passkey_required":      {"パスキーが必要", "passkey required"},
		"wrong_code":            {"確認コードの誤り", "wrong code"},
		"guard_wants_passkey":   {"パスキーが必要", "passkey required"},
		"guard_wants_mfa":       {"追加の確認が必要", "second step required"},
		"signed_in":             {"ログイン", "signed in"},
	},
}

// word returns the customer's word for code in the group of words.
func word(group, code, lang string) string {
	w, ok := words[group][code]
	if !ok {
		if strings.HasPrefix(code, "guard_") && group == "outcome" {
			w = [2]string{"安全のため停止", "stopped for your protection"}
		} else {
			w = [2]string{"その他", "other"}
		}
	}
	if lang == "en" {
		return w[1]
	}
	return w[0]
}

// factorsText names the factors of a sign-in ("password,email_otp") for a
// person: パスワード・メール確認コード, or "password and email code".
func factorsText(factors, lang string) string {
	var names []string
	for _, f := range strings.Split(factors, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n := identity.FactorName(f, lang)
		if lang != "en" && f == event.FactorEmailOTP {
			n = "メール確認コード"
		}
		if n == "" {
			n = word("", f, lang)
		}
		names = append(names, n)
	}
	if lang == "en" {
		return strings.Join(names, " and ")
	}
	return strings.Join(names, "・")
}

// price formats a price with separators and at most two decimals.
func price(v float64) string {
	neg := v < 0
	if neg {
		v = -v
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	ip, fp, _ := strings.Cut(s, ".")
	n, _ := strconv.ParseInt(ip, 10, 64)
	out := commas(n)
	if fp = strings.TrimRight(fp, "0"); fp != "" {
		out += "." + fp
	}
	if neg {
		out = "-" + out
	}
	return out
}

// instrumentName returns the name of the instrument symbol in lang, or
// fallback when the exchange does not know it.
func (p *Portal) instrumentName(symbol, fallback, lang string) string {
	if p.cfg.Broker != nil {
		if in, ok := p.cfg.Broker.Exchange().Instrument(symbol); ok {
			return in.NameIn(lang)
		}
	}
	return fallback
}
