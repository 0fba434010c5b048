package web

import (
	"testing"

	"github.com/kabuto-sec/kabuto/internal/broker"
)

func TestWords(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{word("kind", "nisa", "ja"), "NISA（成長投資枠）"},
		{word("kind", "cash", "ja"), "特定・一般口座（現物）"},
		{word("kind", "cash", "en"), "Cash account"},
		{word("market", "TSE_STANDARD", "ja"), "東証スタンダード"},
		{word("market", "HK", "ja"), "香港"},
		{word("market", "TSE_PRIME", "en"), "TSE Prime"},
		{word("status", "sent", "ja"), "送信済み"},
		{word("status", "held", "ja"), "確認中"},
		{word("status", "no_such_code", "ja"), "その他"},
		{word("outcome", "guard_block", "en"), "stopped for your protection"},
		{factorsText("password,email_otp", "ja"), "パスワード・メール確認コード"},
		{factorsText("passkey", "ja"), "パスキー"},
		{factorsText("totp", "ja"), "認証アプリ"},
		{factorsText("password,totp", "en"), "password and authenticator app"},
		{broker.MaskBank("Rakuten Bank 123-4567280"), "Rakuten Bank •••-•••7280"},
		{broker.MaskBank("1234"), "1234"},
		{price(10980), "10,980"},
		{price(1234.5), "1,234.5"},
		{price(-0.25), "-0.25"},
		{commas(10000), "10,000"},
		{capital("this page has expired"), "This page has expired"},
		{localize("日本語 / english text", "en"), "English text"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
