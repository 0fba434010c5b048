package notify

import "testing"

func TestNoticeWords(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Yen(0), "¥0"}, {Yen(999), "¥999"}, {Yen(1000), "¥1,000"}, {Yen(10000), "¥10,000"},
		{Yen(1234567), "¥1,234,567"}, {Yen(-25000), "-¥25,000"},
		{Word("sent", "ja"), "送金手続き済み"}, {Word("sent", "en"), "sent to your bank"}, {Word("odd", "ja"), "odd"},
		{OrderText("7203", "buy", 100, "ja"), "7203 買い 100株"},
		{OrderText("7203", "sell", 1000, "en"), "sell 1000 shares of 7203"},
		{WithdrawalText("Mizuho •••-•••4567", "ja"), "Mizuho •••-•••4567 への出金"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
